//! Per-task worker sessions: each task runs in a fresh session of its agent, in the background,
//! at most `workers.maxConcurrent` at once and for at most `workers.timeoutSeconds`, and posts
//! its result to the chat it came from exactly once (the report is stored in the same transaction
//! that ends the task).

use super::Coordinator;
use crate::config::WorkersConfig;
use crate::store::{NewOutbox, SessionKind, TaskId, TaskRow, TaskStatus};
use crate::tools::TurnContext;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How a task ended: the task, its status, its result text and the worker session's turns.
type Outcome = (TaskRow, TaskStatus, String, super::SessionTurns);

pub struct Workers {
    slots: Arc<Semaphore>,
    timeout: Duration,
    running: Arc<Mutex<HashMap<TaskId, CancellationToken>>>,
    tracker: TaskTracker,
    stopping: Arc<AtomicBool>,
}

impl Workers {
    pub fn new(cfg: &WorkersConfig) -> Workers {
        Workers {
            slots: Arc::new(Semaphore::new(cfg.max_concurrent.max(1))),
            timeout: Duration::from_secs(cfg.timeout_seconds),
            running: Arc::default(),
            tracker: TaskTracker::new(),
            stopping: Arc::default(),
        }
    }

    /// Stops every worker for shutdown. Their tasks stay `running` in the database and are
    /// reported as interrupted at the next start.
    pub fn cancel_all_for_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for t in self.running.lock().values() {
            t.cancel();
        }
    }

    pub async fn drain(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    pub fn active(&self) -> usize {
        self.running.lock().len()
    }
}

impl Coordinator {
    /// Creates a task and starts its worker.
    pub async fn start_task(
        &self,
        agent: &str,
        prompt: &str,
        origin: &str,
        thread: Option<&str>,
        requester: Option<crate::store::SessionId>,
    ) -> Result<TaskId, String> {
        if !self.agents().exists(agent) {
            return Err(format!(
                "no agent named `{agent}` (agents: {})",
                self.agents().names().join(", ")
            ));
        }
        if prompt.trim().is_empty() {
            return Err("the task needs a description".into());
        }
        let id = self
            .store()
            .task_create(agent, prompt, origin, thread, requester)
            .await
            .map_err(|e| e.to_string())?;
        self.launch(id);
        Ok(id)
    }

    fn launch(&self, id: TaskId) {
        let w = &self.inner.workers;
        let token = CancellationToken::new();
        w.running.lock().insert(id, token.clone());
        let this = self.clone();
        w.tracker.spawn(
            async move { this.run_task(id, token).await }
                .instrument(tracing::info_span!("task", task = id)),
        );
    }

    /// Cancels a queued or running task; its cancellation is reported to its chat.
    pub async fn cancel_task(&self, id: TaskId) -> Result<String, String> {
        let task = self
            .store()
            .task_get(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or(format!("no task #{id}"))?;
        if !task.status.is_active() {
            return Err(format!("task #{id} is already {}", task.status.as_str()));
        }
        match self.inner.workers.running.lock().get(&id) {
            Some(t) => t.cancel(),
            None => return Err(format!("task #{id} is not running in this gateway")),
        }
        Ok(format!("Cancelling task #{id}."))
    }

    async fn run_task(&self, id: TaskId, cancel: CancellationToken) {
        let outcome = self.run_task_inner(id, &cancel).await;
        self.inner.workers.running.lock().remove(&id);
        let Some((task, status, text, turns)) = outcome else {
            return;
        };
        if let Err(e) = self.finish_task(&task, status, &text, turns).await {
            tracing::error!(error = %e, "cannot store task result");
        }
    }

    async fn run_task_inner(&self, id: TaskId, cancel: &CancellationToken) -> Option<Outcome> {
        let task = match self.store().task_get(id).await {
            Ok(Some(t)) => t,
            other => {
                tracing::error!(?other, "task vanished");
                return None;
            }
        };
        let workers = &self.inner.workers;
        let _permit = tokio::select! {
            p = workers.slots.clone().acquire_owned() => p.ok()?,
            _ = cancel.cancelled() => return self.cancelled(task),
        };
        if let Some(why) = self.ledger().refusal(&task.agent).await {
            return Some((task, TaskStatus::Failed, why, None));
        }
        let session = self
            .store()
            .session_open(
                &format!("task:{id}"),
                SessionKind::Task,
                &task.agent,
                Some(&task.origin),
                task.origin_thread.as_deref(),
            )
            .await
            .ok()?;
        if !self.store().task_start(id, session).await.ok()? {
            return None;
        }
        let ctx = TurnContext {
            agent: task.agent.clone(),
            session,
            origin: Some(task.origin.clone()),
            thread: task.origin_thread.clone(),
            model: None,
            is_worker: true,
            sender: None,
            cancel: Default::default(),
            live: None,
            task: Some(id),
            purpose: "task",
        };
        let turn = self.agents().run_turn(&ctx, &task.prompt, self);
        let result = tokio::select! {
            r = tokio::time::timeout(workers.timeout, turn) => r,
            _ = cancel.cancelled() => {
                let _ = self.store().session_end(session).await;
                return self.cancelled(task);
            }
        };
        let _ = self.store().session_end(session).await;
        Some(match result {
            Ok(Ok(t)) => (task, TaskStatus::Done, t.reply, Some((session, t.turns))),
            Ok(Err(e)) => (task, TaskStatus::Failed, e.to_string(), None),
            Err(_) => (task, TaskStatus::TimedOut, String::new(), None),
        })
    }

    fn cancelled(&self, task: TaskRow) -> Option<Outcome> {
        if self.inner.workers.stopping.load(Ordering::SeqCst) {
            None // shutdown: left `running`/`queued`, handled at the next start
        } else {
            Some((task, TaskStatus::Cancelled, String::new(), None))
        }
    }

    /// Ends the task, stores its report for the chat and a note for the session that asked.
    async fn finish_task(
        &self,
        task: &TaskRow,
        status: TaskStatus,
        result: &str,
        turns: super::SessionTurns,
    ) -> crate::store::Result<()> {
        let (id, agent) = (task.id, &task.agent);
        let text = match status {
            TaskStatus::Done => format!("✅ Task #{id} ({agent}) done:\n\n{result}"),
            TaskStatus::Failed => format!("❌ Task #{id} ({agent}) failed: {result}"),
            TaskStatus::TimedOut => format!(
                "⏱️ Task #{id} ({agent}) timed out after {}s.",
                self.inner.workers.timeout.as_secs()
            ),
            TaskStatus::Cancelled => format!("🛑 Task #{id} ({agent}) cancelled."),
            _ => format!(
                "⚠️ Task #{id} ({agent}) was interrupted by a gateway restart. Send it again with /task to retry."
            ),
        };
        let short: String = result.chars().take(2000).collect();
        let note = if short.trim().is_empty() {
            format!("[Task #{id} ({agent}) {}]", status.as_str())
        } else {
            format!("[Task #{id} ({agent}) {}: {short}]", status.as_str())
        };
        let report = NewOutbox {
            target: task.origin.clone(),
            thread: task.origin_thread.clone(),
            reply_to: None,
            text,
            dedupe_key: Some(format!("task:{id}")),
            file: None,
        };
        if let Some(ws) = self.agents().workspace(agent)
            && let Err(e) = ws.note_today(&note)
        {
            tracing::warn!(error = %e, "cannot write the daily note");
        }
        let requester = task.requester_session.map(|s| (s, note.as_str()));
        if let Some(oid) = self
            .store()
            .task_finish(
                id,
                status,
                result,
                &report,
                requester,
                turns.as_ref().map(|(s, t)| (*s, t.as_slice())),
            )
            .await?
        {
            self.inner.delivery.push(oid, &report.target);
        }
        Ok(())
    }
}

/// At start-up: re-run tasks that never started; report those a restart interrupted.
pub async fn recover(c: &Coordinator) -> crate::store::Result<(usize, usize)> {
    recover_rows(c, c.store().tasks_active().await?).await
}

/// Resumes the active tasks `tasks` left by a stopped gateway: a queued one is started, a running
/// one is reported as interrupted (its turn cannot be resumed halfway).
pub async fn recover_rows(
    c: &Coordinator,
    tasks: Vec<crate::store::TaskRow>,
) -> crate::store::Result<(usize, usize)> {
    let (mut rerun, mut interrupted) = (0, 0);
    for t in tasks {
        if t.status == TaskStatus::Running {
            c.finish_task(&t, TaskStatus::Interrupted, "", None).await?;
            interrupted += 1;
        } else {
            c.launch(t.id);
            rerun += 1;
        }
    }
    Ok((rerun, interrupted))
}
