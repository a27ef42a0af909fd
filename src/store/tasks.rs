//! Tasks: work handed to a worker session that reports back to the chat it came from.

use super::outbox::{NewOutbox, OutboxId, insert_outbox};
use super::sessions::{NewTurn, insert_turns};
use super::sql::{Row, p};
use super::{Result, SessionId, Store, now_ms};

pub type TaskId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    TimedOut,
    /// The gateway stopped while it ran.
    Interrupted,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "cancelled" => Self::Cancelled,
            "timed_out" => Self::TimedOut,
            "interrupted" => Self::Interrupted,
            _ => Self::Failed,
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TaskRow {
    pub id: TaskId,
    pub agent: String,
    pub prompt: String,
    pub origin: String,
    pub origin_thread: Option<String>,
    pub requester_session: Option<SessionId>,
    pub status: TaskStatus,
    pub result: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

pub(super) const COLS: &str = "id, agent, prompt, origin, origin_thread, requester_session, status, result, created_at, finished_at";

pub(super) fn row(r: &Row) -> Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        agent: r.get(1)?,
        prompt: r.get(2)?,
        origin: r.get(3)?,
        origin_thread: r.get(4)?,
        requester_session: r.get(5)?,
        status: TaskStatus::parse(&r.get::<String>(6)?),
        result: r.get(7)?,
        created_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

impl Store {
    pub async fn task_create(
        &self,
        agent: &str,
        prompt: &str,
        origin: &str,
        origin_thread: Option<&str>,
        requester: Option<SessionId>,
    ) -> Result<TaskId> {
        let agent = agent.to_owned();
        let prompt = prompt.to_owned();
        let origin = origin.to_owned();
        let origin_thread = origin_thread.map(str::to_owned);
        self.write(move |c| {
            c.value(
                "INSERT INTO tasks (agent, prompt, origin, origin_thread, requester_session, status, created_at, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7) RETURNING id",
                p![agent, prompt, origin, origin_thread, requester, now_ms(), c.me()],
            )
        })
        .await
    }

    /// Moves a queued task to running; false if it is no longer queued (cancelled meanwhile).
    pub async fn task_start(&self, id: TaskId, session: SessionId) -> Result<bool> {
        self.write(move |c| {
            Ok(c.run(
                "UPDATE tasks SET status = 'running', session_id = ?2, started_at = ?3
                 WHERE id = ?1 AND status = 'queued'",
                p![id, session, now_ms()],
            )? == 1)
        })
        .await
    }

    /// Ends an active task and, in the same transaction, stores its report for the chat and a
    /// note in the requesting session. Returns the report's outbox id, or `None` (storing nothing)
    /// if the task had already ended, so a result is reported exactly once.
    pub async fn task_finish(
        &self,
        id: TaskId,
        status: TaskStatus,
        result: &str,
        report: &NewOutbox,
        note: Option<(SessionId, &str)>,
        turns: Option<(SessionId, &[NewTurn])>,
    ) -> Result<Option<OutboxId>> {
        let result = result.to_owned();
        let report = report.clone();
        let note = note.map(|(s, t)| (s, t.to_owned()));
        let turns = turns.map(|(s, t)| (s, t.to_vec()));
        self.write(move |tx| {
            let n = tx.run(
                "UPDATE tasks SET status = ?2, result = ?3, finished_at = ?4
                 WHERE id = ?1 AND status IN ('queued', 'running')",
                p![id, status.as_str(), result, now_ms()],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let out = insert_outbox(tx, &report)?;
            if let Some((session, turns)) = &turns {
                insert_turns(tx, *session, None, turns)?;
            }
            if let Some((session, text)) = note {
                let content = serde_json::json!([{ "type": "text", "text": text }]).to_string();
                let note = NewTurn {
                    role: "user",
                    content,
                    tokens: 0,
                };
                insert_turns(tx, session, None, &[note])?;
            }
            Ok(out)
        })
        .await
    }

    pub async fn task_get(&self, id: TaskId) -> Result<Option<TaskRow>> {
        self.read(move |c| {
            c.opt(
                &format!("SELECT {COLS} FROM tasks WHERE id = ?1"),
                p![id],
                row,
            )
        })
        .await
    }

    /// Active tasks plus the 50 most recent others, newest first.
    pub async fn tasks_recent(&self, origin: Option<&str>) -> Result<Vec<TaskRow>> {
        let origin = origin.map(str::to_owned);
        self.scan(move |c| {
            c.all(
                &format!(
                    "SELECT {COLS} FROM tasks WHERE (CAST(?1 AS TEXT) IS NULL OR origin = ?1)
                 ORDER BY status IN ('queued', 'running') DESC, id DESC LIMIT 50"
                ),
                p![origin],
                row,
            )
        })
        .await
    }

    /// Tasks left active by a previous run of the gateway.
    pub async fn tasks_active(&self) -> Result<Vec<TaskRow>> {
        self.read(move |c| {
            c.all(
                &format!(
                    "SELECT {COLS} FROM tasks WHERE status IN ('queued', 'running') ORDER BY id"
                ),
                p![],
                row,
            )
        })
        .await
    }
}
