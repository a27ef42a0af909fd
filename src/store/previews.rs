//! The messages a streamed reply's live preview posted, kept until the final reply takes them
//! over (see `inbox_finish`): after a crash mid-stream, the re-run turn and its final reply edit
//! the same messages instead of posting new ones.

use super::sql::{Db, p};
use super::{InboxId, OutboxId, Result, Store, StoreError};

impl Store {
    /// Records that part `part` of the reply to `inbox` is previewed in message `message_id`.
    pub async fn preview_posted(
        &self,
        inbox: InboxId,
        part: usize,
        message_id: &str,
    ) -> Result<()> {
        let message_id = message_id.to_owned();
        self.write(move |c| {
            c.run(
                "INSERT INTO previews (inbox_id, part, message_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (inbox_id, part) DO UPDATE SET message_id = excluded.message_id",
                p![inbox, part as i64, message_id],
            )?;
            Ok(())
        })
        .await
    }

    /// The preview messages of the reply to `inbox`, by part.
    pub async fn previews(&self, inbox: InboxId) -> Result<Vec<String>> {
        self.read(move |c| {
            c.all(
                "SELECT message_id FROM previews WHERE inbox_id = ?1 ORDER BY part",
                p![inbox],
                |r| r.get(0),
            )
        })
        .await
    }
}

/// The preview messages standing in for a reply, part by part.
pub(super) const OF_REPLY: &str =
    "SELECT message_id FROM previews WHERE inbox_id = ?1 ORDER BY part";

/// Removes and returns the preview messages of the reply to `inbox`, by part.
pub(super) fn take(c: &Db, inbox: InboxId) -> Result<Vec<String>> {
    let ids = c.all(OF_REPLY, p![inbox], |r| r.get(0))?;
    if !ids.is_empty() {
        c.run("DELETE FROM previews WHERE inbox_id = ?1", p![inbox])?;
    }
    Ok(ids)
}

/// Makes stored reply `id` replace the preview messages `ids` (part by part) when delivered.
pub(super) fn attach(c: &Db, id: OutboxId, ids: &[String]) -> Result<()> {
    let json = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    c.run("UPDATE outbox SET edits = ?2 WHERE id = ?1", p![id, json])?;
    Ok(())
}
