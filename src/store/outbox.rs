//! Outbound messages, stored before sending and marked as each part is delivered.

use super::sql::{Db, Row, p};
use super::{Result, Store, now_ms};

pub type OutboxId = i64;

/// A file to post: the copy made when it was queued (so what is sent is what was asked for, even
/// if the original changes), under the name and type the chat sees.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutboxFile {
    pub path: String,
    pub name: String,
    pub mime: String,
    /// Set for a voice note (Ogg/Opus): posted as one where the platform has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceMeta>,
}

/// What a platform shows of a voice note besides its audio.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VoiceMeta {
    pub duration_secs: f32,
    pub waveform: Vec<u8>,
}

/// A message to store for delivery.
#[derive(Debug, Clone, Default)]
pub struct NewOutbox {
    pub target: String,
    pub thread: Option<String>,
    pub reply_to: Option<String>,
    pub text: String,
    /// One message per cause (`reply:INBOX_ID`, `task:ID`): a second insert with the same key is
    /// ignored, which is what makes "nothing sent twice" hold across retries of the cause.
    pub dedupe_key: Option<String>,
    /// A file posted with `text` as its caption.
    pub file: Option<OutboxFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: OutboxId,
    pub target: String,
    pub thread: Option<String>,
    pub reply_to: Option<String>,
    pub text: String,
    pub status: OutboxStatus,
    pub parts_sent: usize,
    pub attempts: u32,
    pub file: Option<OutboxFile>,
    /// Messages a streamed preview posted: part `i` of the text replaces `edits[i]` in place,
    /// and those beyond the last part are deleted.
    pub edits: Vec<String>,
}

impl OutboxRow {
    /// The row [`insert_outbox`] just stored as `id` from `m`, replacing preview messages
    /// `edits`: what reading it back would give.
    pub(crate) fn stored(id: OutboxId, m: &NewOutbox, edits: Vec<String>) -> OutboxRow {
        OutboxRow {
            id,
            target: m.target.clone(),
            thread: m.thread.clone(),
            reply_to: m.reply_to.clone(),
            text: m.text.clone(),
            status: OutboxStatus::Pending,
            parts_sent: 0,
            attempts: 0,
            file: m.file.clone(),
            edits,
        }
    }
}

/// A reply stored (once per dedupe key).
pub(super) const INSERT: &str =
    "INSERT INTO outbox (target, thread, reply_to, text, dedupe_key, created_at, file, owner)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id";
/// Parts of a reply delivered (all of them: sent).
pub(super) const PROGRESS: &str = "UPDATE outbox SET parts_sent = ?2,
 status = CASE WHEN ?3 THEN 'sent' ELSE status END, sent_at = CASE WHEN ?3 THEN ?4 ELSE sent_at END
 WHERE id = ?1";

pub(crate) fn insert_outbox(c: &Db, m: &NewOutbox) -> Result<Option<OutboxId>> {
    let file = match &m.file {
        Some(f) => {
            Some(serde_json::to_string(f).map_err(|e| super::StoreError::Corrupt(e.to_string()))?)
        }
        None => None,
    };
    c.opt(
        INSERT,
        p![
            m.target,
            m.thread,
            m.reply_to,
            m.text,
            m.dedupe_key,
            now_ms(),
            file,
            c.me()
        ],
        |r| r.get(0),
    )
}

fn row(r: &Row) -> Result<OutboxRow> {
    let status: String = r.get(5)?;
    Ok(OutboxRow {
        id: r.get(0)?,
        target: r.get(1)?,
        thread: r.get(2)?,
        reply_to: r.get(3)?,
        text: r.get(4)?,
        status: match status.as_str() {
            "sent" => OutboxStatus::Sent,
            "failed" => OutboxStatus::Failed,
            _ => OutboxStatus::Pending,
        },
        parts_sent: r.get::<i64>(6)?.max(0) as usize,
        attempts: r.get::<i64>(7)?.clamp(0, u32::MAX as i64) as u32,
        // An unreadable record is delivered as its text, not lost.
        file: r
            .get::<Option<String>>(8)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        edits: r
            .get::<Option<String>>(9)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
    })
}

const COLS: &str = "id, target, thread, reply_to, text, status, parts_sent, attempts, file, edits";

impl Store {
    /// Stores a message for delivery; `None` if its dedupe key was used before.
    pub async fn outbox_enqueue(&self, m: &NewOutbox) -> Result<Option<OutboxId>> {
        let m = m.clone();
        self.write(move |c| insert_outbox(c, &m)).await
    }

    pub async fn outbox_get(&self, id: OutboxId) -> Result<Option<OutboxRow>> {
        self.read(move |c| {
            c.opt(
                &format!("SELECT {COLS} FROM outbox WHERE id = ?1"),
                p![id],
                row,
            )
        })
        .await
    }

    /// Undelivered messages, oldest first.
    pub async fn outbox_pending(&self) -> Result<Vec<OutboxRow>> {
        self.scan(move |c| {
            c.all(
                &format!("SELECT {COLS} FROM outbox WHERE status = 'pending' ORDER BY id"),
                p![],
                row,
            )
        })
        .await
    }

    /// Records that the first `parts` parts were delivered (and, if `done`, all of them).
    pub async fn outbox_progress(&self, id: OutboxId, parts: usize, done: bool) -> Result<()> {
        self.write(move |c| {
            c.run(PROGRESS, p![id, parts as i64, done, now_ms()])?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt; a permanent failure stops further attempts.
    pub async fn outbox_failed_attempt(
        &self,
        id: OutboxId,
        error: &str,
        permanent: bool,
    ) -> Result<()> {
        let error = error.to_owned();
        self.write(move |c| {
            c.run(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                 status = CASE WHEN ?3 THEN 'failed' ELSE status END WHERE id = ?1",
                p![id, error, permanent],
            )?;
            Ok(())
        })
        .await
    }
}
