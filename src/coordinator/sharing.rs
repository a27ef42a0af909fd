//! The coordinator on a store shared by several gateways (see `crate::cluster`): a message is
//! answered by the gateway holding its chat, whichever gateway stored it; a dead gateway's
//! chats, replies and tasks are taken over.
//!
//! A *sweep* reads unanswered messages, takes their chat's lease, and queues them in the chat's
//! lane in the order they were stored. After this gateway stores messages it sweeps their chats;
//! when another gateway tells it (`NOTIFY`) it stored some for a chat, it sweeps that chat; and
//! every [`crate::cluster::BEAT`] it sweeps whatever it may answer (its chats', dead gateways',
//! and free chats whose receiver never took them). One sweep at a time, so a chat's messages
//! enter its lane in order.

use super::{Coordinator, Recovered, workers};
use crate::cluster::{BEAT, Cluster};
use crate::store::{InboxId, OutboxId};
use std::collections::HashSet;
use tokio_util::sync::CancellationToken;

/// The messages queued here and not yet handled: a sweep never queues one twice. A message
/// leaves it once handled, under the same lock the sweeps hold from their read to their last
/// queueing, so a sweep that read it while unanswered still finds it here.
#[derive(Default)]
pub(super) struct Taken {
    queued: tokio::sync::Mutex<Seen>,
    /// Held from adopting a dead gateway's replies to queueing them for delivery: a chat whose
    /// replies one adoption has taken but not yet queued must not be answered meanwhile, or a
    /// newer answer would go out first.
    adopting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<InboxId>,
}

impl Seen {
    fn take(&mut self, id: InboxId) {
        self.ids.insert(id);
    }
}

impl Coordinator {
    /// Queues every message this gateway may answer now, in order: its chats', dead gateways'
    /// chats', and free chats' (see `Cluster::claimable`). Run every beat and at start-up.
    pub(super) async fn sweep(&self) -> usize {
        // Held throughout: two sweeps interleaving could queue a chat's messages out of order.
        let mut seen = self.inner.taken.queued.lock().await;
        let rows = match self.inner.cluster.claimable().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read unanswered messages");
                return 0;
            }
        };
        let mut refused: HashSet<String> = HashSet::new();
        let mut queued = 0;
        for (id, chat, payload) in rows {
            if seen.ids.contains(&id) || refused.contains(&chat) {
                continue;
            }
            if !self.take_chat(&chat).await {
                refused.insert(chat); // another gateway's now
                continue;
            }
            match self.queue(&mut seen, id, &payload, &[]).await {
                Some(n) => queued += n,
                // Its later messages wait for the next sweep, behind it.
                None => {
                    refused.insert(chat);
                }
            }
        }
        queued
    }

    /// Queues the unanswered messages of `chats` (in the order stored) if this gateway holds
    /// them or can take them: after this gateway stored messages (`fresh`), or another told it
    /// it stored some.
    pub(super) async fn sweep_chats(&self, chats: &[String], fresh: &[InboxId]) {
        for chat in chats {
            if !self.take_chat(chat).await {
                continue; // another live gateway's: it was told
            }
            let mut seen = self.inner.taken.queued.lock().await;
            let rows = match self.inner.store.inbox_pending_in(chat).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read unanswered messages");
                    continue;
                }
            };
            for (id, payload) in rows {
                if !seen.ids.contains(&id)
                    && self.queue(&mut seen, id, &payload, fresh).await.is_none()
                {
                    break; // its later messages wait for the next sweep, behind it
                }
            }
        }
    }

    /// Takes (or keeps) the lease of `chat`; true if it is this gateway's. Perhaps taken from a
    /// dead gateway: the replies it stored but did not deliver answer older messages, so they
    /// are queued for delivery first.
    async fn take_chat(&self, chat: &str) -> bool {
        let cluster = &self.inner.cluster;
        if cluster.holds(&Cluster::chat_lease(chat)) {
            return true;
        }
        let _one = self.inner.taken.adopting.lock().await;
        cluster
            .take_chat(chat, |rows| self.deliver_adopted(rows))
            .await
    }

    fn deliver_adopted(&self, rows: Vec<(OutboxId, String)>) {
        for (id, target) in rows {
            tracing::info!(outbox = id, "delivering a reply a stopped gateway left");
            self.inner.delivery.push(id, &target);
        }
    }

    /// Queues stored message `id` in its chat's lane; 1 if it was, 0 if it is skipped for good
    /// (unreadable), `None` if it cannot be queued now (the chat's later messages must not be
    /// queued ahead of it).
    async fn queue(
        &self,
        seen: &mut Seen,
        id: InboxId,
        payload: &str,
        fresh: &[InboxId],
    ) -> Option<usize> {
        let message = match serde_json::from_str(payload) {
            Ok(m) => m,
            Err(e) => {
                // Remembered as taken, so it is not read again on every beat.
                tracing::error!(inbox = id, error = %e, "an unreadable stored message is skipped");
                seen.take(id);
                return Some(0);
            }
        };
        // A dead gateway (or this one before a restart) may have begun it.
        if !fresh.contains(&id)
            && let Err(e) = self.inner.store.inbox_discard_partial(id).await
        {
            tracing::warn!(error = %e, inbox = id, "cannot reset a message to answer it");
            return None;
        }
        seen.take(id);
        if !self.dispatch(id, message).await {
            seen.ids.remove(&id); // answered on the spot
        }
        Some(1)
    }

    /// Message `id` has been handled (answered, or left for a restart): sweeps may see it again
    /// only if it is still unanswered.
    pub(super) async fn handled(&self, id: InboxId) {
        if self.inner.cluster.is_shared() {
            self.inner.taken.queued.lock().await.ids.remove(&id);
        }
    }

    /// Delivers the replies dead gateways (with `mine`, this one before a restart) stored but
    /// did not deliver (see `Cluster::orphaned_outbox`); how many.
    async fn adopt_replies(&self, mine: bool) -> crate::store::Result<usize> {
        let _one = self.inner.taken.adopting.lock().await;
        let adopt = |rows| self.deliver_adopted(rows);
        self.inner.cluster.orphaned_outbox(mine, adopt).await
    }

    /// Start-up on a shared store: this gateway's own work from before a restart, and whatever
    /// dead gateways left; then the takeover loop.
    pub(super) async fn recover_shared(&self) -> crate::store::Result<Recovered> {
        let cluster = &self.inner.cluster;
        cluster.join(self.inner.shutdown.clone()).await?;
        // Undelivered replies first: they answer older messages than any the sweep queues.
        let mut r = Recovered {
            outbox: self.adopt_replies(true).await?,
            ..Recovered::default()
        };
        r.inbox = self.sweep().await;
        let (rerun, interrupted) =
            workers::recover_rows(self, cluster.orphaned_tasks(true).await?).await?;
        r.tasks_rerun = rerun;
        r.tasks_interrupted = interrupted;
        let me = self.clone();
        tokio::spawn(async move { me.settle_expired(None).await });
        tokio::spawn(self.clone().take_over(self.inner.shutdown.clone()));
        Ok(r)
    }

    /// Until `shutdown`: sweeps when another gateway stores messages, and every beat adopts
    /// what dead gateways left (their chats through the sweep, their replies and tasks).
    async fn take_over(self, shutdown: CancellationToken) {
        let cluster = self.inner.cluster.clone();
        let mut adopted = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.store.inbox_changes() => {}
                _ = tokio::time::sleep(BEAT) => {}
            }
            // Chats this gateway holds; a free one is its receiver's to take, a dead holder's is
            // found by the sweep below.
            let told: Vec<String> = self
                .inner
                .store
                .inbox_changed_chats()
                .into_iter()
                .filter(|chat| cluster.holds(&Cluster::chat_lease(chat)))
                .collect();
            if !told.is_empty() {
                self.sweep_chats(&told, &[]).await;
            }
            if adopted.elapsed() < BEAT {
                continue;
            }
            adopted = std::time::Instant::now();
            self.sweep().await;
            if let Err(e) = self.adopt_replies(false).await {
                tracing::warn!(error = %e, "cannot adopt undelivered replies");
            }
            match cluster.orphaned_tasks(false).await {
                Ok(rows) if !rows.is_empty() => {
                    if let Err(e) = workers::recover_rows(&self, rows).await {
                        tracing::warn!(error = %e, "cannot take over tasks");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot adopt tasks"),
            }
        }
    }
}
