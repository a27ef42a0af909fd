//! Sessions (a conversation with one agent) and their turns.

use super::sql::{Db, Dialect, Row, p};
use super::{InboxId, Result, Store, now_ms};

pub type SessionId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// The ongoing conversation of one agent in one chat.
    Main,
    /// A worker session for one task.
    Task,
    /// One run of a cron job.
    Cron,
    /// One heartbeat run.
    Heartbeat,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Task => "task",
            Self::Cron => "cron",
            Self::Heartbeat => "heartbeat",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionRow {
    pub id: SessionId,
    pub key: String,
    pub kind: SessionKind,
    pub agent: String,
    pub target: Option<String>,
    pub thread: Option<String>,
    pub summary: Option<String>,
    pub created_at: i64,
    pub turns: i64,
}

/// A turn to store: role, JSON content blocks, and output tokens.
#[derive(Debug, Clone)]
pub struct NewTurn {
    pub role: &'static str,
    pub content: String,
    pub tokens: u64,
}

/// The live session with a key (read before a message's turn; checked again by the writer
/// before it creates one).
pub(super) const LIVE: &str = "SELECT id FROM sessions WHERE key = ?1 AND ended_at IS NULL";
/// A session created (a chat's first message, or its first after `/new`).
pub(super) const OPEN: &str = "INSERT INTO sessions (key, kind, agent, target, thread, created_at)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
/// The summary compaction wrote.
pub(super) const SUMMARY: &str = "SELECT summary FROM sessions WHERE id = ?1";
/// A session's turns since its last compaction: what a turn starts from.
pub(super) const CONTEXT_TURNS: &str =
    "SELECT id, role, content FROM turns WHERE session_id = ?1 AND compacted = 0 ORDER BY id";
/// The agent and model a chat chose.
pub(super) const CHAT_CHOICES: &str = "SELECT agent, model FROM chat_prefs WHERE target = ?1";
/// One turn stored (SQLite; PostgreSQL indexes it for search in the same statement).
pub(super) const INSERT_TURN: &str =
    "INSERT INTO turns (session_id, inbox_id, role, content, tokens, created_at)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// A session's context size after a turn.
pub(super) const SET_CONTEXT: &str = "UPDATE sessions SET context_tokens = ?2 WHERE id = ?1";

/// Stores the turns of one handled message (in the caller's transaction).
pub(crate) fn insert_turns(
    c: &Db,
    session: SessionId,
    inbox: Option<InboxId>,
    turns: &[NewTurn],
) -> Result<()> {
    let now = now_ms();
    for t in turns {
        match c.dialect() {
            // Not indexed for search here: that is batched off the message path (store::memory).
            Dialect::Sqlite => {
                c.run(
                    INSERT_TURN,
                    p![session, inbox, t.role, t.content, t.tokens, now],
                )?;
            }
            // Indexed for search in the same statement (see store::memory).
            Dialect::Postgres => {
                let text = super::memory::turn_text(&t.content);
                c.run(
                    "WITH t AS (INSERT INTO turns (session_id, inbox_id, role, content, tokens, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id)
                     INSERT INTO memory_docs (agent, source, reference, turn_id, text)
                     SELECT s.agent, 'turn', CAST(s.id AS TEXT), t.id, ?7 FROM t, sessions s
                     WHERE s.id = ?1 AND ?8",
                    p![session, inbox, t.role, t.content, t.tokens, now, text, !text.trim().is_empty()],
                )?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct TurnRow {
    pub id: i64,
    pub role: String,
    /// JSON array of content blocks.
    pub content: String,
}

const COLS: &str = "s.id, s.key, s.kind, s.agent, s.target, s.thread, s.summary, s.created_at,
    (SELECT count(*) FROM turns t WHERE t.session_id = s.id AND t.compacted = 0)";

fn row(r: &Row) -> Result<SessionRow> {
    let kind: String = r.get(2)?;
    Ok(SessionRow {
        id: r.get(0)?,
        key: r.get(1)?,
        kind: match kind.as_str() {
            "task" => SessionKind::Task,
            "cron" => SessionKind::Cron,
            "heartbeat" => SessionKind::Heartbeat,
            _ => SessionKind::Main,
        },
        agent: r.get(3)?,
        target: r.get(4)?,
        thread: r.get(5)?,
        summary: r.get(6)?,
        created_at: r.get(7)?,
        turns: r.get(8)?,
    })
}

/// The key of the main session of `agent` in a chat (and thread).
pub fn main_key(agent: &str, target: &str, thread: Option<&str>) -> String {
    format!("{agent}|{target}|{}", thread.unwrap_or(""))
}

impl Store {
    /// The live session with `key`, created if there is none.
    pub async fn session_open(
        &self,
        key: &str,
        kind: SessionKind,
        agent: &str,
        target: Option<&str>,
        thread: Option<&str>,
    ) -> Result<SessionId> {
        let key = key.to_owned();
        let agent = agent.to_owned();
        let target = target.map(str::to_owned);
        let thread = thread.map(str::to_owned);
        // Nearly always the session is open already: a read answers that without the writer.
        let lookup = key.clone();
        let open: Option<i64> = self
            .read(move |c| c.opt(LIVE, p![lookup], |r| r.get(0)))
            .await?;
        if let Some(id) = open {
            return Ok(id);
        }
        self.write(move |c| {
            let existing: Option<i64> = c.opt(LIVE, p![key], |r| r.get(0))?;
            if let Some(id) = existing {
                return Ok(id);
            }
            c.value(
                OPEN,
                p![key, kind.as_str(), agent, target, thread, now_ms()],
            )
        })
        .await
    }

    /// Ends the live sessions whose key starts with `prefix` (all main sessions if empty), so the
    /// next message starts fresh. The old turns stay in the database. Returns how many ended.
    pub async fn sessions_end(&self, prefix: &str) -> Result<usize> {
        let prefix = prefix.to_owned();
        self.write(move |c| {
            c.run(
                "UPDATE sessions SET ended_at = ?2 WHERE ended_at IS NULL AND kind = 'main'
                 AND substr(key, 1, length(CAST(?1 AS TEXT))) = ?1",
                p![prefix, now_ms()],
            )
        })
        .await
    }

    pub async fn session_end(&self, id: SessionId) -> Result<()> {
        self.write(move |c| {
            c.run(
                "UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
                p![id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn sessions_live(&self) -> Result<Vec<SessionRow>> {
        self.scan(move |c| {
            c.all(
                &format!("SELECT {COLS} FROM sessions s WHERE ended_at IS NULL ORDER BY id"),
                p![],
                row,
            )
        })
        .await
    }

    pub async fn session_get(&self, id: SessionId) -> Result<Option<SessionRow>> {
        self.read(move |c| {
            c.opt(
                &format!("SELECT {COLS} FROM sessions s WHERE id = ?1"),
                p![id],
                row,
            )
        })
        .await
    }

    /// The session's current (not compacted) turns, oldest first.
    pub async fn turns(&self, session: SessionId) -> Result<Vec<TurnRow>> {
        self.read(move |c| turn_rows(c, session)).await
    }

    /// Marks the turns up to `last_turn` compacted (they stay stored) and sets the summary.
    pub async fn session_compact(
        &self,
        id: SessionId,
        last_turn: i64,
        summary: &str,
    ) -> Result<()> {
        let summary = summary.to_owned();
        self.write(move |tx| {
            tx.run(
                "UPDATE turns SET compacted = 1 WHERE session_id = ?1 AND id <= ?2",
                p![id, last_turn],
            )?;
            tx.run(
                "UPDATE sessions SET summary = ?2, context_tokens = 0 WHERE id = ?1",
                p![id, summary],
            )?;
            Ok(())
        })
        .await
    }

    /// Stores turns outside a message's handling (imports, benchmarks).
    pub async fn turns_add(&self, session: SessionId, turns: &[NewTurn]) -> Result<()> {
        let turns = turns.to_vec();
        self.write_long(move |tx| insert_turns(tx, session, None, &turns))
            .await
    }

    /// What a turn starts from, in one read: the session's uncompacted turns (as [`Store::turns`])
    /// and the summary compaction wrote, if any.
    pub async fn session_context(
        &self,
        session: SessionId,
    ) -> Result<(Vec<TurnRow>, Option<String>)> {
        self.read(move |c| {
            let summary = c.opt(SUMMARY, p![session], |r| r.get(0))?.flatten();
            Ok((turn_rows(c, session)?, summary))
        })
        .await
    }

    /// The summary written by compaction, if any.
    pub async fn session_summary(&self, id: SessionId) -> Result<Option<String>> {
        self.read(move |c| Ok(c.opt(SUMMARY, p![id], |r| r.get(0))?.flatten()))
            .await
    }

    /// The agent this chat switched to with `/agent`, if any.
    pub async fn chat_agent(&self, target: &str) -> Result<Option<String>> {
        Ok(self.chat_choices(target).await?.0)
    }

    /// The agent (`/agent`) and the model (`/model`) this chat chose, if any, in one read: a
    /// message needs both.
    pub async fn chat_choices(&self, target: &str) -> Result<(Option<String>, Option<String>)> {
        let target = target.to_owned();
        self.read(move |c| {
            Ok(
                c.opt(CHAT_CHOICES, p![target], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .unwrap_or_default(),
            )
        })
        .await
    }

    /// The model this chat switched to with `/model`, if any.
    pub async fn chat_model(&self, target: &str) -> Result<Option<String>> {
        Ok(self.chat_choices(target).await?.1)
    }

    /// Sets (or with `None` clears) this chat's model.
    pub async fn set_chat_model(&self, target: &str, model: Option<&str>) -> Result<()> {
        let target = target.to_owned();
        let model = model.map(str::to_owned);
        self.write(move |c| {
            c.run(
                "INSERT INTO chat_prefs (target, model) VALUES (?1, ?2)
                 ON CONFLICT (target) DO UPDATE SET model = excluded.model",
                p![target, model],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_chat_agent(&self, target: &str, agent: &str) -> Result<()> {
        let target = target.to_owned();
        let agent = agent.to_owned();
        self.write(move |c| {
            c.run(
                "INSERT INTO chat_prefs (target, agent) VALUES (?1, ?2)
                 ON CONFLICT (target) DO UPDATE SET agent = excluded.agent",
                p![target, agent],
            )?;
            Ok(())
        })
        .await
    }
}

/// A session's uncompacted turns, oldest first.
fn turn_rows(c: &Db, session: SessionId) -> Result<Vec<TurnRow>> {
    c.all(CONTEXT_TURNS, p![session], |r| {
        Ok(TurnRow {
            id: r.get(0)?,
            role: r.get(1)?,
            content: r.get(2)?,
        })
    })
}
