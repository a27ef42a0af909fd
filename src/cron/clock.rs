//! Where the scheduler gets the time. Tests substitute a clock they control, so they do not wait
//! for real minutes: with `SWITCHBOARD_TEST_CLOCK=/path/file` set, the time is read from that file
//! (RFC 3339) whenever it exists. Nothing else uses it.

use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::Arc;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// The longest the scheduler sleeps without reading the clock again. Sleeps run on the
    /// monotonic clock, so after a wall-clock step (NTP, a resumed laptop) a job is at most this
    /// late.
    fn recheck_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(30)
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The time written in a file, or the system time when the file is missing or unreadable.
pub struct FileClock(pub PathBuf);

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
    }

    /// Tests move this clock by writing the file; they expect the scheduler to notice quickly.
    fn recheck_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

/// The system clock, or the test clock when `SWITCHBOARD_TEST_CLOCK` names a file.
pub fn from_env() -> Arc<dyn Clock> {
    match std::env::var_os("SWITCHBOARD_TEST_CLOCK") {
        Some(p) if !p.is_empty() => Arc::new(FileClock(PathBuf::from(p))),
        _ => Arc::new(SystemClock),
    }
}
