//! The channels this gateway runs, by name. Platform adapters live in `adapters/`; this is only
//! the registry the coordinator and the delivery loop look them up in, plus the local channel,
//! the control room's channel, and `late`: the sink a platform connects with before the
//! coordinator exists.

pub mod late;
pub mod local;
pub mod web;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_channel::{ChannelHandle, HealthReport};

/// One channel's state, as `gateway status` reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelHealth {
    pub name: String,
    #[serde(flatten)]
    pub health: HealthReport,
}

#[derive(Clone, Default)]
pub struct Channels {
    map: BTreeMap<String, ChannelHandle>,
}

impl Channels {
    pub fn add(&mut self, handle: ChannelHandle) {
        self.map.insert(handle.name().to_string(), handle);
    }

    pub fn get(&self, name: &str) -> Option<&ChannelHandle> {
        self.map.get(name)
    }

    /// The channel for a stored target string (`telegram:123`).
    pub fn for_target(&self, target: &str) -> Option<&ChannelHandle> {
        self.get(target.split(':').next().unwrap_or(target))
    }

    pub fn names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// Each channel's state as its adapter reports it.
    pub fn health(&self) -> Vec<ChannelHealth> {
        self.map
            .iter()
            .map(|(name, h)| ChannelHealth {
                name: name.clone(),
                health: h.health(),
            })
            .collect()
    }
}
