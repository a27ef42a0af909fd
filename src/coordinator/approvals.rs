//! Approvals: a call of a tool in `tools.approve` waits until someone answers in the chat.
//!
//! The request is stored first, then posted: with Approve / Deny / "Allow for this session"
//! buttons where the channel has them ([`Buttons`]), else as text naming the CLI command. The
//! turn waits on it; a button press, the API or `switchboard approvals` decide it, and the
//! question is replaced by the outcome. No answer within `tools.approvalTimeoutSeconds` (10
//! minutes) is a denial the model is told about.
//!
//! A restart while a request is pending does not run the tool: the interrupted message is
//! handled again, its call finds the stored request (same session, tool and arguments) and waits
//! on it — an answer given meanwhile, in the chat or from the terminal, is used then.

use super::Coordinator;
use crate::store::{ApprovalId, ApprovalRow, ApprovalStatus, NewApproval, NewOutbox};
use crate::tools::TurnContext;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::{Button, ButtonKind, Outbound, Press, Target};

const DATA_PREFIX: &str = "approval:";
/// Characters of the arguments shown in the question.
const ARGS_SHOWN: usize = 1200;

/// The turns waiting on each request.
#[derive(Default)]
pub(super) struct Waiters(
    parking_lot::Mutex<std::collections::HashMap<ApprovalId, Arc<tokio::sync::Notify>>>,
);

impl Waiters {
    fn get(&self, id: ApprovalId) -> Arc<tokio::sync::Notify> {
        self.0.lock().entry(id).or_default().clone()
    }

    fn wake(&self, id: ApprovalId) {
        if let Some(n) = self.0.lock().get(&id) {
            n.notify_waiters();
        }
    }

    fn done(&self, id: ApprovalId) {
        self.0.lock().remove(&id);
    }
}

/// An answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAnswer {
    Approve,
    /// Approve, and let this tool run unasked for the rest of the session.
    ApproveSession,
    Deny,
}

fn minutes(secs: u64) -> String {
    if secs.is_multiple_of(60) && secs >= 60 {
        let m = secs / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        format!("{secs} seconds")
    }
}

fn shown_args(args: &str) -> String {
    let mut pretty = serde_json::from_str::<Value>(args)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| args.to_string());
    if crate::tools::cut_chars(&mut pretty, ARGS_SHOWN).is_some() {
        pretty.push_str("\n…");
    }
    // A fence inside the arguments must not end the code block early.
    pretty.replace("```", "'''")
}

impl Coordinator {
    /// The [`crate::tools::ToolHost::approve`] of the coordinator.
    pub(super) async fn ask_approval(
        &self,
        ctx: &TurnContext,
        tool: &str,
        input: &Value,
    ) -> Result<(), String> {
        let store = self.store();
        let db = |e: crate::store::StoreError| format!("cannot record the approval request: {e}");
        if store
            .approval_granted(ctx.session, tool)
            .await
            .map_err(db)?
        {
            return Ok(());
        }
        let args = input.to_string();
        let timeout = self.config().tools.approval_timeout_seconds;
        let row = match store
            .approval_reusable(ctx.session, tool, &args)
            .await
            .map_err(db)?
        {
            Some(r) => {
                tracing::info!(approval = r.id, tool, "waiting on a request made before");
                r
            }
            None => {
                let Some(origin) = ctx.origin.as_deref() else {
                    return Err(format!(
                        "`{tool}` needs approval (tools.approve), and this run has no chat to ask; it was not run"
                    ));
                };
                let r = store
                    .approval_create(&NewApproval {
                        session: ctx.session,
                        agent: &ctx.agent,
                        target: Some(origin),
                        thread: ctx.thread.as_deref(),
                        requester: ctx.sender.as_deref(),
                        tool,
                        args: &args,
                        ttl_ms: (timeout * 1000) as i64,
                    })
                    .await
                    .map_err(db)?;
                self.post_question(&r, timeout).await;
                r
            }
        };
        self.wait_answer(row, tool, timeout).await
    }

    /// Posts the question: buttons where the channel has them, else text naming the CLI.
    async fn post_question(&self, r: &ApprovalRow, timeout: u64) {
        let Some(target) = r.target.as_deref() else {
            return;
        };
        let text = format!(
            "🔐 **{}** wants to run `{}`:\n```\n{}\n```\nAllow it? No answer within {} counts as no. (request #{})",
            r.agent,
            r.tool,
            shown_args(&r.args),
            minutes(timeout),
            r.id
        );
        let parsed: Option<Target> = target.parse().ok();
        if let (Some(t), Some(buttons)) = (
            parsed,
            self.channels().for_target(target).and_then(|h| h.buttons()),
        ) {
            let data = |what: &str| format!("{DATA_PREFIX}{}:{what}", r.id);
            let row = [
                Button {
                    label: "Approve".into(),
                    data: data("yes"),
                    kind: ButtonKind::Positive,
                },
                Button {
                    label: "Deny".into(),
                    data: data("no"),
                    kind: ButtonKind::Negative,
                },
                Button {
                    label: "Allow for this session".into(),
                    data: data("session"),
                    kind: ButtonKind::Neutral,
                },
            ];
            let msg = Outbound {
                target: t,
                thread: r.thread.clone(),
                reply_to: None,
                text: text.clone(),
            };
            for attempt in 0..3u64 {
                match buttons.ask(&msg, &row).await {
                    Ok(id) => {
                        if let Err(e) = self.store().approval_set_message(r.id, &id).await {
                            tracing::warn!(error = %e, "cannot record the approval message");
                        }
                        return;
                    }
                    Err(e) if e.is_retryable() && attempt < 2 => {
                        tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot post the approval buttons; asking in text");
                        break;
                    }
                }
            }
        }
        let text = format!(
            "{text}\nAnswer from a terminal: `switchboard approvals approve {id}` or `switchboard approvals deny {id}`.",
            id = r.id
        );
        if let Err(e) = self
            .post(&NewOutbox {
                target: target.to_string(),
                thread: r.thread.clone(),
                reply_to: None,
                text,
                dedupe_key: Some(format!("approval:{}", r.id)),
                file: None,
            })
            .await
        {
            tracing::error!(error = %e, "cannot post the approval request");
        }
    }

    /// Waits until `row` is answered or expires. Shutdown does not end the wait: the turn is
    /// abandoned unfinished and handled again after the restart, still waiting on this request.
    async fn wait_answer(&self, row: ApprovalRow, tool: &str, timeout: u64) -> Result<(), String> {
        let waiters = &self.inner.approvals;
        let notify = waiters.get(row.id);
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis((row.expires_at - crate::store::now_ms()).max(0) as u64);
        let result = loop {
            let woken = notify.notified();
            let now = match self.store().approval(row.id).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    break Err(format!(
                        "the approval request for `{tool}` is gone; it was not run"
                    ));
                }
                Err(e) => break Err(format!("cannot read the approval request: {e}")),
            };
            match now.status {
                ApprovalStatus::Approved => {
                    if let Err(e) = self.store().approval_consume(now.id).await {
                        tracing::warn!(error = %e, "cannot mark the approval used");
                    }
                    break Ok(());
                }
                ApprovalStatus::Denied => {
                    break Err(format!(
                        "{} denied running `{tool}`; it was not run. Do not try it again unless asked.",
                        now.decided_by.as_deref().unwrap_or("the user")
                    ));
                }
                ApprovalStatus::Expired => break Err(expired(tool, timeout)),
                ApprovalStatus::Pending => {}
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep_until(deadline) => {
                    self.settle_expired(Some(row.id)).await;
                    // Re-read: an answer may have landed just before the deadline.
                }
            }
        };
        waiters.done(row.id);
        result
    }

    /// Decides request `id` (a press, the API or the CLI); returns what to tell whoever answered.
    pub async fn decide_approval(
        &self,
        id: ApprovalId,
        answer: ApprovalAnswer,
        by: &str,
    ) -> Result<String, String> {
        let decided = self
            .store()
            .approval_decide(
                id,
                answer != ApprovalAnswer::Deny,
                answer == ApprovalAnswer::ApproveSession,
                by,
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(r) = decided else {
            return match self.store().approval(id).await.map_err(|e| e.to_string())? {
                Some(r) => Err(format!(
                    "request #{id} is already {}",
                    if r.status == ApprovalStatus::Pending {
                        "expired"
                    } else {
                        r.status.as_str()
                    }
                )),
                None => Err(format!("no approval request #{id}")),
            };
        };
        self.inner.approvals.wake(id);
        let (outcome, short) = match answer {
            ApprovalAnswer::Approve => (format!("✅ Approved by {by}: `{}`.", r.tool), "Approved"),
            ApprovalAnswer::ApproveSession => (
                format!(
                    "✅ Allowed by {by} for the rest of this session: `{}`.",
                    r.tool
                ),
                "Allowed for this session",
            ),
            ApprovalAnswer::Deny => (
                format!("❌ Denied by {by}: `{}` was not run.", r.tool),
                "Denied",
            ),
        };
        let me = self.clone();
        tokio::spawn(async move { me.settle(&r, &outcome).await });
        Ok(format!(
            "{short}: request #{id} (`{}`)",
            self.store()
                .approval(id)
                .await
                .ok()
                .flatten()
                .map(|r| r.tool)
                .unwrap_or_default()
        ))
    }

    /// Replaces the question with its outcome (buttons removed), where the channel can edit.
    async fn settle(&self, r: &ApprovalRow, text: &str) {
        let (Some(target), Some(message)) = (r.target.as_deref(), r.message_id.as_deref()) else {
            return;
        };
        let Ok(t) = target.parse::<Target>() else {
            return;
        };
        if let Some(b) = self.channels().for_target(target).and_then(|h| h.buttons())
            && let Err(e) = b.settle(&t, message, text).await
        {
            tracing::warn!(error = %e, approval = r.id, "cannot mark the approval message with its outcome");
        }
    }

    /// A button press: only for our approval buttons, only from the person who asked or an
    /// allowed sender of that chat.
    pub(super) async fn on_press(&self, press: &Press) -> Option<String> {
        let rest = press.data.strip_prefix(DATA_PREFIX)?;
        let (id, what) = rest.split_once(':')?;
        let id: ApprovalId = id.parse().ok()?;
        let answer = match what {
            "yes" => ApprovalAnswer::Approve,
            "session" => ApprovalAnswer::ApproveSession,
            "no" => ApprovalAnswer::Deny,
            _ => return None,
        };
        let r = match self.store().approval(id).await {
            Ok(Some(r)) => r,
            _ => return Some("This request no longer exists.".into()),
        };
        let chat = press.chat.to_string();
        if r.target.as_deref() != Some(chat.as_str()) {
            return Some("This request belongs to another chat.".into());
        }
        let asked = r.requester.as_deref() == Some(press.sender.id.as_str());
        if !asked
            && !self
                .inner
                .access
                .may_approve(self.store(), &press.chat.channel, &press.sender.id)
                .await
        {
            tracing::warn!(approval = id, sender = %press.sender.id, "ignored an approval press from someone who may not answer");
            return Some("Only the person who asked, or an allowed user, can answer this.".into());
        }
        let by = press
            .sender
            .name
            .clone()
            .unwrap_or_else(|| press.sender.id.clone());
        Some(match self.decide_approval(id, answer, &by).await {
            Ok(m) => m,
            Err(e) => e,
        })
    }

    /// Marks requests past their time (`only` one, or all: at start-up, those that expired while
    /// the gateway was down) as expired, in the store and in the chat.
    pub(super) async fn settle_expired(&self, only: Option<ApprovalId>) {
        let timeout = self.config().tools.approval_timeout_seconds;
        match self.store().approvals_expire(only).await {
            Ok(rows) => {
                for r in rows {
                    self.settle(
                        &r,
                        &format!(
                            "⌛ No answer within {}: `{}` was not run.",
                            minutes(timeout),
                            r.tool
                        ),
                    )
                    .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot expire approval requests"),
        }
    }
}

fn expired(tool: &str, timeout: u64) -> String {
    format!(
        "nobody answered the approval request for `{tool}` within {}: treated as a denial, it was not run",
        minutes(timeout)
    )
}
