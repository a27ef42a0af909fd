//! Several gateways on one PostgreSQL store: who answers which chat, who runs the scheduler, who
//! polls Telegram, and who takes over when a gateway dies.
//!
//! - Each gateway is an *instance* (`host:port`, so a restarted gateway is the same one and
//!   resumes its own work at once). It says it is alive every [`BEAT`]; one silent for [`TTL`]
//!   is dead.
//! - A *lease* is held by one live instance: `chat:TARGET` (that chat's messages are answered
//!   by it, in order), `role:scheduler` (cron and the heartbeat), `role:telegram-poll` (Telegram
//!   allows one long poll per bot). A dead holder's leases are taken by whoever asks next.
//! - Messages may be stored by any gateway (a webhook behind a load balancer reaches any); the
//!   chat's holder answers them (`Coordinator::sweep`), woken by `NOTIFY`.
//! - Stored replies and tasks belong to the gateway that made them; a dead one's are adopted by
//!   exactly one other. Its replies go with their chats, in the step that takes the chat, so the
//!   taker queues them before it answers the chat's next message.
//!
//! On SQLite there is one gateway: every lease is its own and none of this touches the database.

use crate::store::{OutboxId, Store};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a gateway says it is alive.
pub const BEAT: Duration = Duration::from_secs(1);
/// How long a gateway may stay silent before the others take its work over. Takeover after a
/// crash takes about this long (plus a beat).
pub const TTL: Duration = Duration::from_secs(5);

/// How long a message in a chat nobody holds waits for the gateway that received it before any
/// gateway may take the chat.
pub const FREE_AFTER: Duration = Duration::from_secs(2);

fn ttl_ms() -> i64 {
    TTL.as_millis() as i64
}

/// This gateway's place among the others. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    shared: bool,
    /// Leases known to be ours while our last beat is recent (no database call to ask again).
    held: parking_lot::Mutex<HashSet<String>>,
    /// When a beat last reached the database.
    last_beat: parking_lot::Mutex<Instant>,
}

/// This machine's name, for instance ids.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates what fits.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "localhost".into(),
    }
}

/// The instance id of the gateway serving `port` on this machine.
pub fn instance_id(port: u16) -> String {
    format!("{}:{port}", hostname())
}

impl Cluster {
    pub fn new(store: Store) -> Cluster {
        Cluster {
            inner: Arc::new(Inner {
                shared: store.is_shared(),
                store,
                held: Default::default(),
                last_beat: parking_lot::Mutex::new(Instant::now()),
            }),
        }
    }

    /// Whether other gateways may share the store (and so leases mean something).
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }

    pub fn me(&self) -> &str {
        self.inner.store.instance()
    }

    /// Records this gateway as alive and starts saying so every [`BEAT`] until `shutdown`.
    pub async fn join(&self, shutdown: CancellationToken) -> crate::store::Result<()> {
        if !self.inner.shared {
            return Ok(());
        }
        self.inner
            .store
            .instance_join(std::process::id(), env!("CARGO_PKG_VERSION"))
            .await?;
        *self.inner.last_beat.lock() = Instant::now();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(BEAT) => {}
                }
                let sent = Instant::now();
                match me.inner.store.instance_beat().await {
                    Ok(true) => *me.inner.last_beat.lock() = sent,
                    Ok(false) => {
                        // Taken for dead while we could not reach the database: what we held
                        // may be another's now.
                        tracing::warn!("this gateway was taken for dead; taking its leases anew");
                        me.inner.held.lock().clear();
                        *me.inner.last_beat.lock() = sent;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot tell the others this gateway is alive")
                    }
                }
            }
        });
        Ok(())
    }

    /// Leaves the cluster (at shutdown, after the work in hand is done): the others take this
    /// gateway's chats and roles at once.
    pub async fn leave(&self) {
        if !self.inner.shared {
            return;
        }
        self.inner.held.lock().clear();
        if let Err(e) = self.inner.store.instance_leave().await {
            tracing::warn!(error = %e, "cannot leave the cluster; the others take over once it is silent");
        }
    }

    /// Our last beat is recent enough that nobody can have taken our leases.
    fn fresh(&self) -> bool {
        self.inner.last_beat.lock().elapsed() + BEAT < TTL
    }

    /// Whether this gateway holds lease `name` (taking it if it is free or its holder is dead).
    /// Always true on a store of our own.
    pub async fn hold(&self, name: &str) -> bool {
        if !self.inner.shared {
            return true;
        }
        if self.fresh() && self.inner.held.lock().contains(name) {
            return true;
        }
        match self.inner.store.lease_take(name, ttl_ms()).await {
            Ok(true) if self.fresh() => {
                self.inner.held.lock().insert(name.to_string());
                true
            }
            Ok(_) => {
                self.inner.held.lock().remove(name);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, lease = name, "cannot take a lease");
                false
            }
        }
    }

    /// Whether this gateway is known to hold lease `name` (no database call).
    pub fn holds(&self, name: &str) -> bool {
        !self.inner.shared || (self.fresh() && self.inner.held.lock().contains(name))
    }

    /// The lease of a chat.
    pub fn chat_lease(target: &str) -> String {
        format!("chat:{target}")
    }

    /// Runs `work` while this gateway holds role `role`: at once on a store of our own; on a
    /// shared one once the role is ours, stopping it (cancelling its token) if the role is lost,
    /// and starting it again when it comes back. `standby` runs meanwhile, once.
    pub fn run_role<W, F, S>(
        &self,
        role: &'static str,
        shutdown: CancellationToken,
        work: W,
        standby: S,
    ) where
        W: Fn(CancellationToken) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
        S: Future<Output = ()> + Send + 'static,
    {
        if !self.inner.shared {
            tokio::spawn(work(shutdown));
            return;
        }
        let me = self.clone();
        let lease = format!("role:{role}");
        tokio::spawn(async move {
            let mut standby = Some(Box::pin(standby));
            loop {
                // Wait for the role (the standby work runs meanwhile).
                loop {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    if me.hold(&lease).await {
                        break;
                    }
                    let pause = tokio::time::sleep(BEAT);
                    match standby.as_mut() {
                        Some(s) => tokio::select! {
                            _ = s => standby = None,
                            _ = pause => {}
                            _ = shutdown.cancelled() => return,
                        },
                        None => tokio::select! {
                            _ = pause => {}
                            _ = shutdown.cancelled() => return,
                        },
                    }
                }
                tracing::info!(role, "this gateway holds the role");
                let token = shutdown.child_token();
                let task = tokio::spawn(work(token.clone()));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            let _ = task.await;
                            return;
                        }
                        _ = tokio::time::sleep(BEAT) => {}
                    }
                    if !me.hold(&lease).await {
                        tracing::warn!(role, "lost the role; stopping it here");
                        token.cancel();
                        let _ = task.await;
                        break;
                    }
                }
            }
        });
    }

    /// Messages this gateway may answer now, oldest first (see `Store::inbox_claimable`). A chat
    /// nobody holds goes to the gateway that received its message, or to anyone once the
    /// message has waited [`FREE_AFTER`] (its receiver died before taking the chat).
    pub async fn claimable(
        &self,
    ) -> crate::store::Result<Vec<(crate::store::InboxId, String, String)>> {
        let free_before = crate::store::now_ms() - FREE_AFTER.as_millis() as i64;
        self.inner
            .store
            .inbox_claimable(ttl_ms(), free_before, 1_000)
            .await
    }

    /// Takes (or keeps) chat `target`: true if it is this gateway's. Taken anew, it comes with
    /// the replies a dead holder stored but did not deliver (see `Store::chat_take`), handed to
    /// `adopt` before the chat counts as held here, so that whatever answers the chat's next
    /// message finds them queued ahead of it.
    pub async fn take_chat(
        &self,
        target: &str,
        adopt: impl FnOnce(Vec<(OutboxId, String)>),
    ) -> bool {
        let lease = Self::chat_lease(target);
        if self.holds(&lease) {
            return true;
        }
        match self.inner.store.chat_take(target, ttl_ms()).await {
            Ok(Some(replies)) => {
                adopt(replies);
                self.mark_held(lease)
            }
            Ok(None) => {
                self.inner.held.lock().remove(&lease);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, chat = target, "cannot take a chat");
                false
            }
        }
    }

    /// Stored replies to deliver that nobody alive is delivering (with `mine`: this gateway's
    /// from before a restart too), with their chats where free or a dead gateway's (see
    /// `Store::outbox_adopt`): handed to `adopt`, oldest first, before the chats count as held.
    pub async fn orphaned_outbox(
        &self,
        mine: bool,
        adopt: impl FnOnce(Vec<(OutboxId, String)>),
    ) -> crate::store::Result<usize> {
        if !self.inner.shared {
            return Ok(0);
        }
        let adopted = self.inner.store.outbox_adopt(ttl_ms(), mine).await?;
        let n = adopted.replies.len();
        adopt(adopted.replies);
        for chat in adopted.chats {
            self.mark_held(Self::chat_lease(&chat));
        }
        Ok(n)
    }

    /// Records lease `name`, just taken, as held: true unless our last beat is too old for it
    /// to count (see [`Cluster::hold`]).
    fn mark_held(&self, name: String) -> bool {
        if !self.fresh() {
            return false;
        }
        self.inner.held.lock().insert(name);
        true
    }

    /// Active tasks nobody alive is running (with `mine`: this gateway's from before a restart).
    pub async fn orphaned_tasks(
        &self,
        mine: bool,
    ) -> crate::store::Result<Vec<crate::store::TaskRow>> {
        self.inner.store.tasks_adopt(ttl_ms(), mine).await
    }

    /// The gateways on this store and what they hold, for `gateway status`.
    pub async fn instances(&self) -> crate::store::Result<Vec<crate::store::InstanceRow>> {
        if !self.inner.shared {
            return Ok(Vec::new());
        }
        self.inner.store.instances(ttl_ms()).await
    }
}
