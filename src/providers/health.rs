//! Which providers are failing, and why — for the owner, who is told at most once an hour per
//! cause. Chats already get the specific reason with every failed answer (SPEC); the owner (the
//! person running the gateway) needs to hear about a revoked token or a dead provider without
//! being told again for every message: one `ERROR` log line per cause per hour, and the live list
//! in `gateway status` (and its JSON) until the provider answers again.

use super::ProviderError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the owner hears about the same cause.
const TELL_EVERY: Duration = Duration::from_secs(3600);

/// A provider problem as `gateway status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    pub provider: String,
    /// The kind of failure: `auth`, `rate_limited`, `overloaded`, `server`, `network`, …
    pub cause: String,
    /// The latest error, as the chats were told.
    pub error: String,
    pub failures: u64,
    /// When it started and when it last happened (Unix ms).
    pub since_ms: i64,
    pub last_ms: i64,
}

struct Entry {
    problem: Problem,
    told: Instant,
}

#[derive(Default)]
pub struct Health {
    open: parking_lot::Mutex<BTreeMap<(String, &'static str), Entry>>,
}

fn cause(e: &ProviderError) -> Option<&'static str> {
    Some(match e {
        ProviderError::Auth(_) => "auth",
        ProviderError::RateLimited { .. } => "rate_limited",
        ProviderError::Overloaded => "overloaded",
        ProviderError::Server { .. } => "server",
        ProviderError::Network(_) => "network",
        ProviderError::Refused(_) => "refused",
        ProviderError::BadResponse(_) => "bad_response",
        // Not the provider's fault, or already counted.
        ProviderError::ContextTooLong | ProviderError::CoolingDown(_) => return None,
    })
}

impl Health {
    /// Notes a failure; returns true when the owner was told (first time, or an hour since).
    pub fn failed(&self, provider: &str, e: &ProviderError) -> bool {
        let Some(cause) = cause(e) else { return false };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut open = self.open.lock();
        let key = (provider.to_string(), cause);
        let tell = match open.get_mut(&key) {
            Some(entry) => {
                entry.problem.failures += 1;
                entry.problem.last_ms = now_ms;
                entry.problem.error = e.to_string();
                let due = entry.told.elapsed() >= TELL_EVERY;
                if due {
                    entry.told = Instant::now();
                }
                due
            }
            None => {
                open.insert(
                    key,
                    Entry {
                        problem: Problem {
                            provider: provider.to_string(),
                            cause: cause.to_string(),
                            error: e.to_string(),
                            failures: 1,
                            since_ms: now_ms,
                            last_ms: now_ms,
                        },
                        told: Instant::now(),
                    },
                );
                true
            }
        };
        if tell {
            tracing::error!(
                provider,
                cause,
                error = %e,
                "provider failing (this is said at most once an hour per cause; `switchboard gateway status` lists open problems)"
            );
        }
        tell
    }

    /// The provider answered: its problems are over.
    pub fn recovered(&self, provider: &str) {
        let mut open = self.open.lock();
        let before = open.len();
        open.retain(|(p, _), _| p != provider);
        if open.len() != before {
            tracing::info!(provider, "provider answering again");
        }
    }

    /// The open problem `e` belongs to.
    pub fn problem(&self, provider: &str, e: &ProviderError) -> Option<Problem> {
        let cause = cause(e)?;
        self.open
            .lock()
            .get(&(provider.to_string(), cause))
            .map(|e| e.problem.clone())
    }

    pub fn problems(&self) -> Vec<Problem> {
        self.open
            .lock()
            .values()
            .map(|e| e.problem.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_told_once_per_cause_until_the_provider_recovers() {
        let h = Health::default();
        let auth = ProviderError::Auth("token revoked".into());
        assert!(h.failed("anthropic", &auth));
        assert!(!h.failed("anthropic", &auth), "told again within the hour");
        assert!(
            h.failed("anthropic", &ProviderError::Overloaded),
            "a new cause"
        );
        assert!(h.failed("moonshot", &auth), "another provider");
        assert!(!h.failed("anthropic", &ProviderError::ContextTooLong));
        let p = h.problems();
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].provider.as_str(), p[0].cause.as_str()),
            ("anthropic", "auth")
        );
        assert_eq!(p[0].failures, 2);
        h.recovered("anthropic");
        assert_eq!(h.problems().len(), 1);
        assert!(h.failed("anthropic", &auth), "a new outage is news");
    }
}
