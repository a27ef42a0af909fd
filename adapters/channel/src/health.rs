//! A channel's live state, kept by its adapter and read by `gateway status` and `doctor`.
//!
//! Why: the failure users of other gateways hit most is a channel that silently stops (polling
//! dies on an error and nobody notices until a restart). An adapter records here whether it is
//! connected, retrying (and why), or stopped for good (and what to fix); the core only reads it.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// Started, not yet connected.
    Starting,
    Connected,
    /// Failing and trying again (the platform is down, a network problem, a 5xx).
    Retrying,
    /// Given up until the owner acts (a rejected token, disallowed intents).
    Stopped,
}

/// What `gateway status` shows for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    pub state: ChannelState,
    /// The last error (while retrying or stopped), without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the channel entered this state (ms since the epoch).
    pub since_ms: i64,
    /// Retrying, but it will not heal by itself: a person must act (another poller on the same
    /// token, a rejected token found mid-run). The owner is told at once, not after a while.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attention: bool,
}

/// Shared between an adapter (writer) and the core (reader). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Health(Arc<Mutex<HealthReport>>);

impl Health {
    pub fn new(state: ChannelState) -> Self {
        Self(Arc::new(Mutex::new(HealthReport {
            state,
            error: None,
            since_ms: now_ms(),
            attention: false,
        })))
    }

    pub fn connected(&self) {
        self.set(ChannelState::Connected, None);
    }

    pub fn retrying(&self, error: impl Into<String>) {
        self.set(ChannelState::Retrying, Some(error.into()));
    }

    pub fn stopped(&self, error: impl Into<String>) {
        self.set(ChannelState::Stopped, Some(error.into()));
    }

    /// Still retrying, but only a person can fix it (see [`HealthReport::attention`]).
    pub fn needs_person(&self, error: impl Into<String>) {
        self.set(ChannelState::Retrying, Some(error.into()));
        self.lock().attention = true;
    }

    pub fn report(&self) -> HealthReport {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthReport> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn set(&self, state: ChannelState, error: Option<String>) {
        let mut g = self.lock();
        g.attention = false;
        if g.state != state {
            g.since_ms = now_ms();
        }
        g.state = state;
        g.error = error;
    }
}

impl Default for Health {
    /// Channels with nothing to connect to (the local one) are connected from the start.
    fn default() -> Self {
        Self::new(ChannelState::Connected)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
