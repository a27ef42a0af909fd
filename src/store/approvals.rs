//! Approval requests (see `crate::coordinator::approvals` for the flow).

use super::sql::{Row, p};
use super::{Result, SessionId, Store, now_ms};

pub type ApprovalId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// No answer in time: a denial.
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApprovalRow {
    pub id: ApprovalId,
    pub session: SessionId,
    pub agent: String,
    pub target: Option<String>,
    pub thread: Option<String>,
    pub requester: Option<String>,
    pub tool: String,
    pub args: String,
    pub status: ApprovalStatus,
    pub scope: Option<String>,
    pub decided_by: Option<String>,
    pub message_id: Option<String>,
    pub consumed: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

pub struct NewApproval<'a> {
    pub session: SessionId,
    pub agent: &'a str,
    pub target: Option<&'a str>,
    pub thread: Option<&'a str>,
    pub requester: Option<&'a str>,
    pub tool: &'a str,
    pub args: &'a str,
    pub ttl_ms: i64,
}

const COLUMNS: &str = "id, session_id, agent, target, thread, requester, tool, args, status, scope, \
                       decided_by, message_id, consumed, created_at, expires_at";

fn row(r: &Row) -> Result<ApprovalRow> {
    Ok(ApprovalRow {
        id: r.get(0)?,
        session: r.get(1)?,
        agent: r.get(2)?,
        target: r.get(3)?,
        thread: r.get(4)?,
        requester: r.get(5)?,
        tool: r.get(6)?,
        args: r.get(7)?,
        status: ApprovalStatus::parse(&r.get::<String>(8)?),
        scope: r.get(9)?,
        decided_by: r.get(10)?,
        message_id: r.get(11)?,
        consumed: r.get::<i64>(12)? != 0,
        created_at: r.get(13)?,
        expires_at: r.get(14)?,
    })
}

impl Store {
    /// Whether `tool` was allowed for the rest of `session`.
    pub async fn approval_granted(&self, session: SessionId, tool: &str) -> Result<bool> {
        let tool = tool.to_owned();
        self.read(move |c| {
            Ok(c.opt(
                "SELECT 1 FROM approval_grants WHERE session_id = ?1 AND tool = ?2",
                p![session, tool],
                |_| Ok(()),
            )?
            .is_some())
        })
        .await
    }

    /// The request a call should wait on instead of asking again: the same session, tool and
    /// arguments, still pending, or approved and not yet used (answered while the turn that
    /// asked was gone).
    pub async fn approval_reusable(
        &self,
        session: SessionId,
        tool: &str,
        args: &str,
    ) -> Result<Option<ApprovalRow>> {
        let tool = tool.to_owned();
        let args = args.to_owned();
        let now = now_ms();
        self.read(move |c| {
            c.opt(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE session_id = ?1 AND tool = ?2 AND args = ?3
                     AND ((status = 'pending' AND expires_at > ?4) OR (status = 'approved' AND consumed = 0))
                     ORDER BY id DESC LIMIT 1"
                ),
                p![session, tool, args, now],
                row,
            )
        }).await
    }

    pub async fn approval_create(&self, a: &NewApproval<'_>) -> Result<ApprovalRow> {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        let (session, agent, tool, args, ttl_ms) = (
            a.session,
            a.agent.to_owned(),
            a.tool.to_owned(),
            a.args.to_owned(),
            a.ttl_ms,
        );
        let (target, thread, requester) = (owned(a.target), owned(a.thread), owned(a.requester));
        let now = now_ms();
        self.write(move |c| {
            let id: i64 = c.value(
                "INSERT INTO approvals (session_id, agent, target, thread, requester, tool, args, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                p![
                    session,
                    agent,
                    target,
                    thread,
                    requester,
                    tool,
                    args,
                    now,
                    now + ttl_ms
                ],
            )?;
            c.one(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                p![id],
                row,
            )
        }).await
    }

    pub async fn approval(&self, id: ApprovalId) -> Result<Option<ApprovalRow>> {
        self.read(move |c| {
            c.opt(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                p![id],
                row,
            )
        })
        .await
    }

    pub async fn approval_set_message(&self, id: ApprovalId, message_id: &str) -> Result<()> {
        let message_id = message_id.to_owned();
        self.write(move |c| {
            c.run(
                "UPDATE approvals SET message_id = ?2 WHERE id = ?1",
                p![id, message_id],
            )?;
            Ok(())
        })
        .await
    }

    /// Answers a pending, unexpired request; `scope` `session` also grants the tool for the rest
    /// of the session. `None` when it was no longer pending (answered, expired, unknown).
    pub async fn approval_decide(
        &self,
        id: ApprovalId,
        approve: bool,
        session_scope: bool,
        by: &str,
    ) -> Result<Option<ApprovalRow>> {
        let by = by.to_owned();
        let now = now_ms();
        self.write(move |tx| {
            let status = if approve { "approved" } else { "denied" };
            let scope = match (approve, session_scope) {
                (true, true) => Some("session"),
                (true, false) => Some("once"),
                _ => None,
            };
            let changed = tx.run(
                "UPDATE approvals SET status = ?2, scope = ?3, decided_by = ?4, decided_at = ?5
                 WHERE id = ?1 AND status = 'pending' AND expires_at > ?5",
                p![id, status, scope, by, now],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            let r = tx.one(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                p![id],
                row,
            )?;
            if scope == Some("session") {
                tx.run(
                    "INSERT INTO approval_grants (session_id, tool, granted_by, created_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    p![r.session, r.tool, by, now],
                )?;
            }
            Ok(Some(r))
        })
        .await
    }

    /// Marks an approval as used by the call it allowed.
    pub async fn approval_consume(&self, id: ApprovalId) -> Result<()> {
        self.write(move |c| {
            c.run("UPDATE approvals SET consumed = 1 WHERE id = ?1", p![id])?;
            Ok(())
        })
        .await
    }

    /// Expires pending requests past their time; returns them (their questions need settling).
    pub async fn approvals_expire(&self, only: Option<ApprovalId>) -> Result<Vec<ApprovalRow>> {
        let now = now_ms();
        self.write(move |tx| {
            let rows = tx.all(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' AND expires_at <= ?1
                 AND (CAST(?2 AS BIGINT) IS NULL OR id = ?2)"
                ),
                p![now, only],
                row,
            )?;
            for r in &rows {
                tx.run(
                    "UPDATE approvals SET status = 'expired', decided_at = ?2 WHERE id = ?1",
                    p![r.id, now],
                )?;
            }
            Ok(rows)
        })
        .await
    }

    /// Requests, newest first: pending only, or the latest 50 of any state.
    pub async fn approvals_list(&self, pending_only: bool) -> Result<Vec<ApprovalRow>> {
        self.scan(move |c| {
            c.all(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE (?1 = 0 OR status = 'pending')
                 ORDER BY id DESC LIMIT 50"
                ),
                p![pending_only as i64],
                row,
            )
        })
        .await
    }
}
