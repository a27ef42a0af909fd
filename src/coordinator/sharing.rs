//! The coordinator on a store shared by several gateways (see `crate::cluster`): a message is
//! answered by the gateway holding its chat, whichever gateway stored it; a dead gateway's
//! chats, replies and tasks are taken over.
//!
//! A *sweep* reads the unanswered messages this gateway may answer (its chats', free chats',
//! dead gateways' chats'), takes each chat's lease, and queues the messages in their chat's lane
//! in the order they were stored. Sweeps run after this gateway stores messages, when another
//! gateway tells it it stored some (`NOTIFY`), and every [`crate::cluster::BEAT`] to notice dead
//! gateways. One sweep at a time, so a chat's messages enter its lane in order.

use super::{Coordinator, Recovered, workers};
use crate::cluster::{BEAT, Cluster};
use crate::store::InboxId;
use std::collections::{HashSet, VecDeque};
use tokio_util::sync::CancellationToken;

/// Messages already queued here: a sweep never queues one twice. Bounded: a message is only
/// swept while unanswered, so only the recent ones matter.
#[derive(Default)]
pub(super) struct Taken {
    queued: tokio::sync::Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<InboxId>,
    order: VecDeque<InboxId>,
}

/// How many queued messages are remembered: far more than a gateway has unanswered at once.
const REMEMBERED: usize = 20_000;

impl Seen {
    /// True if `id` was not taken before (and now is).
    fn take(&mut self, id: InboxId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

impl Coordinator {
    /// Queues every message this gateway may answer now, in order. `fresh`: messages this
    /// gateway just stored (no one can have begun them, so there is nothing to clean up).
    pub(super) async fn sweep(&self, fresh: &[InboxId]) -> usize {
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
        for row in rows {
            if seen.ids.contains(&row.id) {
                continue;
            }
            let chat = row.message.chat.to_string();
            if refused.contains(&chat) {
                continue;
            }
            let lease = Cluster::chat_lease(&chat);
            let had = self.inner.cluster.holds(&lease);
            if !self.inner.cluster.hold(&lease).await {
                refused.insert(chat); // another gateway's now
                continue;
            }
            if !had {
                // Perhaps taken from a dead gateway: the replies it stored but did not deliver
                // answer older messages, so they go out first. (Its holder was dead when we took
                // the lease, so it is dead for the adoption too.)
                self.adopt_replies().await;
            }
            // A dead gateway (or this one before a restart) may have begun it.
            if !fresh.contains(&row.id)
                && let Err(e) = self.inner.store.inbox_discard_partial(row.id).await
            {
                tracing::warn!(error = %e, inbox = row.id, "cannot reset a message to answer it");
                continue;
            }
            seen.take(row.id);
            self.dispatch(row.id, row.message).await;
            queued += 1;
        }
        queued
    }

    /// Delivers the replies dead gateways stored but did not deliver.
    async fn adopt_replies(&self) {
        match self.inner.cluster.orphaned_outbox(false).await {
            Ok(rows) => {
                for (id, target) in rows {
                    tracing::info!(outbox = id, "delivering a reply a stopped gateway left");
                    self.inner.delivery.push(id, &target);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot adopt undelivered replies"),
        }
    }

    /// Start-up on a shared store: this gateway's own work from before a restart, and whatever
    /// dead gateways left; then the takeover loop.
    pub(super) async fn recover_shared(&self) -> crate::store::Result<Recovered> {
        let cluster = &self.inner.cluster;
        cluster.join(self.inner.shutdown.clone()).await?;
        let mut r = Recovered::default();
        for (id, target) in cluster.orphaned_outbox(true).await? {
            self.inner.delivery.push(id, &target);
            r.outbox += 1;
        }
        r.inbox = self.sweep(&[]).await;
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
            self.sweep(&[]).await;
            if adopted.elapsed() < BEAT {
                continue;
            }
            adopted = std::time::Instant::now();
            self.adopt_replies().await;
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
