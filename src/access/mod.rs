//! Who may talk to the agents: one implementation for every platform.
//!
//! Direct messages follow the channel's `dmPolicy`: `open` (anyone), `allowlist` (only `allowFrom`
//! and approved senders; others are ignored silently) or `pairing` (unknown senders get one reply
//! with a code, valid for an hour, which the owner approves with `switchboard pairing approve`).
//! Group chats are served only when configured, and with `requireMention` only when the bot is
//! mentioned or replied to. Decisions read the database each time, so approvals made by the CLI
//! take effect without a restart.

use crate::config::{Config, DmPolicy, GuildChannels};
use crate::store::{PairingOutcome, Store};
use std::collections::{HashMap, HashSet};
use switchboard_channel::Inbound;

/// Pairing codes use letters and digits that cannot be confused when read aloud or retyped.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const CODE_TTL_MS: i64 = 60 * 60 * 1000;
pub const MAX_PENDING: i64 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Drop silently (not allowed, or a group message that does not concern the bot).
    Ignore,
    /// An unknown sender under `pairing`: offer a code.
    Pair,
}

#[derive(Debug, Clone, Default)]
struct Policy {
    dm: DmPolicy,
    allow_from: HashSet<String>,
    /// Group chats served (by chat id as in our target), with their `requireMention`.
    groups: HashMap<String, bool>,
    /// Spaces (Discord guilds) whose every channel is served, with `requireMention`.
    spaces: HashMap<String, bool>,
}

#[derive(Debug, Clone, Default)]
pub struct Access {
    policies: HashMap<String, Policy>,
}

impl Access {
    pub fn from_config(c: &Config) -> Access {
        let mut policies = HashMap::new();
        // The terminal and the web control room: whoever reaches them holds the gateway token
        // (or sits on the machine itself).
        for owner in ["local", "web"] {
            policies.insert(
                owner.to_string(),
                Policy {
                    dm: DmPolicy::Open,
                    ..Policy::default()
                },
            );
        }
        if let Some(t) = &c.channels.telegram {
            policies.insert(
                "telegram".into(),
                Policy {
                    dm: t.dm_policy,
                    allow_from: t.allow_from.iter().cloned().collect(),
                    groups: t
                        .groups
                        .iter()
                        .map(|(id, g)| (id.clone(), g.require_mention))
                        .collect(),
                    spaces: HashMap::new(),
                },
            );
        }
        if let Some(d) = &c.channels.discord {
            let mut groups = HashMap::new();
            let mut spaces = HashMap::new();
            for (guild, g) in &d.guilds {
                match &g.channels {
                    Some(GuildChannels::List(ids)) => {
                        for id in ids {
                            groups.insert(format!("channel:{id}"), d.require_mention);
                        }
                    }
                    _ => {
                        spaces.insert(guild.clone(), d.require_mention);
                    }
                }
            }
            policies.insert(
                "discord".into(),
                Policy {
                    dm: d.dm_policy,
                    allow_from: d.allow_from.iter().cloned().collect(),
                    groups,
                    spaces,
                },
            );
        }
        Access { policies }
    }

    pub async fn decide(&self, store: &Store, m: &Inbound) -> Decision {
        let Some(p) = self.policies.get(&m.chat.channel) else {
            return Decision::Ignore;
        };
        if !m.is_direct {
            let require_mention = p
                .groups
                .get(&m.chat.chat)
                .or_else(|| m.space.as_ref().and_then(|s| p.spaces.get(s)));
            return match require_mention {
                None => Decision::Ignore,
                Some(true) if !m.mentions_bot => Decision::Ignore,
                Some(_) => Decision::Allow,
            };
        }
        if p.dm == DmPolicy::Open || p.allow_from.contains(&m.sender.id) {
            return Decision::Allow;
        }
        match store.is_allowed(&m.chat.channel, &m.sender.id).await {
            Ok(true) => Decision::Allow,
            Ok(false) if p.dm == DmPolicy::Pairing => Decision::Pair,
            Ok(false) => Decision::Ignore,
            Err(e) => {
                tracing::error!(error = %e, "cannot check access; ignoring the message");
                Decision::Ignore
            }
        }
    }

    /// Whether `sender` may answer approval requests in `channel` besides the person who asked:
    /// a sender named in `allowFrom` or approved by pairing (in a group, being allowed to talk is
    /// not enough to approve what someone else's request would run). The local channel is the
    /// owner's terminal.
    pub async fn may_approve(&self, store: &Store, channel: &str, sender: &str) -> bool {
        if channel == "local" || channel == "web" {
            return true;
        }
        let Some(p) = self.policies.get(channel) else {
            return false;
        };
        p.allow_from.contains(sender) || store.is_allowed(channel, sender).await.unwrap_or(false)
    }

    /// Creates a pairing request for the sender of `m`; the reply text to send, if any.
    pub async fn pair(&self, store: &Store, m: &Inbound) -> Option<String> {
        let code = new_code();
        let outcome = store
            .pairing_request(
                &m.chat.channel,
                &m.sender.id,
                m.sender.name.as_deref(),
                &code,
                CODE_TTL_MS,
                MAX_PENDING,
            )
            .await;
        match outcome {
            Ok(PairingOutcome::NewCode(code)) => {
                tracing::info!(channel = %m.chat.channel, sender = %m.sender.id, "pairing code issued");
                Some(format!(
                    "Hi! I don't know you yet. To talk to me, ask my owner to run:\n\nswitchboard pairing approve {} {code}\n\n(The code is valid for one hour.)",
                    m.chat.channel
                ))
            }
            Ok(PairingOutcome::AlreadyPending) => None,
            Ok(PairingOutcome::TooManyPending) => {
                tracing::warn!(channel = %m.chat.channel, "pairing request ignored: too many pending");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store pairing request");
                None
            }
        }
    }
}

pub fn new_code() -> String {
    (0..8)
        .map(|_| CODE_ALPHABET[rand::random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_avoid_ambiguous_characters() {
        for _ in 0..200 {
            let c = new_code();
            assert_eq!(c.len(), 8);
            assert!(!c.contains(['0', 'O', '1', 'I']), "{c}");
        }
    }
}
