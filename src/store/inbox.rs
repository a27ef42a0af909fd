//! Inbound messages, stored before the platform is told we have them.

use super::outbox::{NewOutbox, OutboxRow, insert_outbox};
use super::sessions::{NewTurn, SessionId, insert_turns};
use super::sql::{Dialect, p};
use super::{Result, Store, StoreError, now_ms};
use switchboard_channel::Inbound;

pub type InboxId = i64;

/// A message stored (once: a redelivery is a conflict, and no row).
pub(super) const INSERT: &str =
    "INSERT INTO inbox (target, message_id, payload, received_at, receiver)
 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (target, message_id) DO NOTHING RETURNING id";
/// A message marked answered.
pub(super) const FINISH: &str =
    "UPDATE inbox SET status = 'done', done_at = ?2 WHERE id = ?1 AND status = 'pending'";

#[derive(Debug, Clone)]
pub struct InboxRow {
    pub id: InboxId,
    pub message: Inbound,
}

impl Store {
    /// Stores inbound messages in one transaction; for each, its id, or `None` when the same
    /// message (target and platform id) was stored before, so a redelivery is not answered twice.
    pub async fn inbox_insert_many(&self, ms: &[Inbound]) -> Result<Vec<Option<InboxId>>> {
        let ms = ms.to_vec();
        let payloads = ms
            .iter()
            .map(|m| serde_json::to_string(m).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        self.write(move |tx| {
            let now = now_ms();
            let ids = ms
                .iter()
                .zip(&payloads)
                .map(|(m, payload)| {
                    tx.opt(
                        INSERT,
                        p![m.chat.to_string(), m.message_id, payload, now, tx.me()],
                        |r| r.get(0),
                    )
                })
                .collect::<Result<Vec<Option<InboxId>>>>()?;
            // Other gateways may hold these chats: they hear of it at the commit.
            if tx.dialect() == Dialect::Postgres {
                let mut told = std::collections::HashSet::new();
                for (m, id) in ms.iter().zip(&ids) {
                    let chat = m.chat.to_string();
                    if id.is_some() && told.insert(chat.clone()) {
                        tx.run(
                            "SELECT pg_notify('switchboard', 'inbox ' || ?1 || ' ' || ?2)",
                            p![tx.me(), chat],
                        )?;
                    }
                }
            }
            Ok(ids)
        })
        .await
    }

    /// Messages not yet answered, oldest first (after a restart, they are answered now).
    pub async fn inbox_pending(&self) -> Result<Vec<InboxRow>> {
        self.scan(move |c| {
            let rows = c.all(
                "SELECT id, payload FROM inbox WHERE status = 'pending' ORDER BY id",
                p![],
                |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
            )?;
            rows.into_iter()
                .map(|(id, p)| {
                    let message = serde_json::from_str(&p)
                        .map_err(|e| StoreError::Corrupt(format!("inbox {id}: {e}")))?;
                    Ok(InboxRow { id, message })
                })
                .collect()
        })
        .await
    }

    /// Forgets the turns a half-finished handling of `id` wrote (the process stopped mid-turn),
    /// so handling it again starts clean.
    pub async fn inbox_discard_partial(&self, id: InboxId) -> Result<usize> {
        self.write(move |c| {
            if c.dialect() == Dialect::Postgres {
                c.run(
                    "DELETE FROM memory_docs WHERE turn_id IN (SELECT id FROM turns WHERE inbox_id = ?1)",
                    p![id],
                )?;
            }
            c.run("DELETE FROM turns WHERE inbox_id = ?1", p![id])
        })
        .await
    }

    /// Marks `id` answered and stores the session turns it produced and its reply, in one
    /// transaction: all of it happens or none, so a crash can neither lose the reply nor cause it
    /// twice, and a session never holds half a turn. Returns the stored reply as delivery will
    /// read it (no read back needed to deliver it).
    pub async fn inbox_finish(
        &self,
        id: InboxId,
        turns: Option<(SessionId, &[NewTurn])>,
        reply: Option<&NewOutbox>,
        context: Option<(SessionId, u64)>,
    ) -> Result<Option<OutboxRow>> {
        let turns = turns.map(|(s, t)| (s, t.to_vec()));
        let reply = reply.cloned();
        self.write(move |tx| {
            let done = tx.run(FINISH, p![id, now_ms()])?;
            if done == 0 {
                return Ok(None); // answered before (or unknown): nothing twice
            }
            if let Some((session, turns)) = &turns {
                insert_turns(tx, *session, Some(id), turns)?;
            }
            // The session's context size, in the same commit (one fewer per message).
            if let Some((session, tokens)) = context {
                tx.run(super::sessions::SET_CONTEXT, p![session, tokens as i64])?;
            }
            // A streamed preview of this reply is replaced by it, in place (or deleted when
            // there is no reply): the store, not each caller, keeps a preview from outliving it.
            let previews = super::previews::take(tx, id)?;
            let Some(r) = &reply else {
                return Ok(None);
            };
            let Some(oid) = insert_outbox(tx, r)? else {
                return Ok(None);
            };
            if !previews.is_empty() {
                super::previews::attach(tx, oid, &previews)?;
            }
            Ok(Some(OutboxRow::stored(oid, r, previews)))
        })
        .await
    }
}
