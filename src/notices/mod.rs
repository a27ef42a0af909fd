//! Notices to the owner: the problems that need a person (a provider failing, a channel that
//! cannot connect, a cron job that keeps failing, a budget reached), sent to `owner` at most once
//! an hour per cause.
//!
//! Why a module of its own: every subsystem can notice a problem, but only this one knows who the
//! owner is and how often they may be told. The "last told" time per cause is in the database, so
//! a crash loop does not become a notice loop. Without `owner` the log line is all there is (and
//! each subsystem's status entry, which `gateway status` shows).

use crate::cron::clock::Clock;
use crate::delivery::Delivery;
use crate::store::{NewOutbox, Store};
use std::sync::{Arc, OnceLock};

/// How often the owner may hear about one cause.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

pub struct Notices {
    owner: Option<String>,
    store: Store,
    clock: Arc<dyn Clock>,
    /// Set once the coordinator exists; notices stored before that are delivered on attach.
    delivery: OnceLock<Delivery>,
    early: parking_lot::Mutex<Vec<(crate::store::OutboxId, String)>>,
}

impl Notices {
    pub fn new(owner: Option<String>, store: Store, clock: Arc<dyn Clock>) -> Notices {
        Notices {
            owner,
            store,
            clock,
            delivery: OnceLock::new(),
            early: parking_lot::Mutex::default(),
        }
    }

    /// Where the notices go from now on.
    pub fn attach(&self, delivery: Delivery) {
        let d = self.delivery.get_or_init(|| delivery);
        for (id, target) in std::mem::take(&mut *self.early.lock()) {
            d.push(id, &target);
        }
    }

    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Tells the owner about `cause` (a stable key such as `provider:anthropic:auth`) unless they
    /// heard about it within the hour. Returns whether a message was queued.
    pub async fn tell(&self, cause: &str, text: &str) -> bool {
        self.send(cause, text, Some(EVERY.as_millis() as i64)).await
    }

    /// Tells the owner about `cause` once, ever (a cause that carries its own period, such as
    /// `budget:daily:2026-12-04`).
    pub async fn tell_once(&self, cause: &str, text: &str) -> bool {
        self.send(cause, text, None).await
    }

    async fn send(&self, cause: &str, text: &str, every_ms: Option<i64>) -> bool {
        tracing::warn!(cause, "{text}");
        let Some(owner) = &self.owner else {
            return false;
        };
        let now = self.clock.now().timestamp_millis();
        match self.store.notice_claim(cause, now, every_ms).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::error!(error = %e, cause, "cannot record an owner notice");
                return false;
            }
        }
        let m = NewOutbox {
            target: owner.clone(),
            thread: None,
            reply_to: None,
            text: format!("⚠️ {text}"),
            dedupe_key: Some(format!("notice:{cause}:{now}")),
            file: None,
        };
        match self.store.outbox_enqueue(&m).await {
            Ok(Some(id)) => {
                match self.delivery.get() {
                    Some(d) => d.push(id, owner),
                    None => self.early.lock().push((id, owner.clone())),
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, cause, "cannot queue an owner notice");
                false
            }
        }
    }
}

/// How long a channel may keep retrying before the owner hears about it (a platform hiccup or a
/// network blip heals by itself within this).
const RETRYING_FOR: std::time::Duration = std::time::Duration::from_secs(120);
/// How often the channels' states are looked at: reading a few mutexes, nothing at idle to speak of.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Restarts after which an MCP server that is still not up "keeps dying".
const MCP_RESTARTS: u32 = 3;

/// Tells the owner about channels that cannot connect: stopped (a rejected token, disallowed
/// intents, another poller on the same bot), or retrying for more than [`RETRYING_FOR`]; and
/// about MCP servers that keep dying.
pub async fn watch(
    notices: Arc<Notices>,
    channels: crate::channels::Channels,
    mcp: Arc<crate::tools::mcp::Servers>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use switchboard_channel::ChannelState;
    loop {
        let now_ms = chrono::Utc::now().timestamp_millis();
        for c in channels.health() {
            let error = c.health.error.as_deref().unwrap_or("no reason given");
            match c.health.state {
                ChannelState::Stopped => {
                    notices
                        .tell(
                            &format!("channel:{}:stopped", c.name),
                            &format!(
                                "The {} channel cannot connect and has stopped: {error}",
                                c.name
                            ),
                        )
                        .await;
                }
                ChannelState::Retrying if c.health.attention => {
                    notices
                        .tell(
                            &format!("channel:{}:attention", c.name),
                            &format!("The {} channel cannot connect: {error}", c.name),
                        )
                        .await;
                }
                ChannelState::Retrying
                    if now_ms - c.health.since_ms >= RETRYING_FOR.as_millis() as i64 =>
                {
                    notices.tell(
                        &format!("channel:{}:retrying", c.name),
                        &format!(
                            "The {} channel has been failing to connect for {} minutes (still retrying): {error}",
                            c.name,
                            (now_ms - c.health.since_ms) / 60_000
                        ),
                    ).await;
                }
                _ => {}
            }
        }
        for s in mcp.info() {
            if s.restarts >= MCP_RESTARTS && s.status != crate::tools::mcp::Status::Ready {
                notices.tell(
                    &format!("mcp:{}:dying", s.name),
                    &format!(
                        "MCP server {} keeps dying ({} restarts): {}. Its tools are unavailable meanwhile; `switchboard mcp test {}` shows why.",
                        s.name,
                        s.restarts,
                        s.last_error.as_deref().unwrap_or("no error recorded"),
                        s.name
                    ),
                ).await;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
}
