//! Waiting between retries: exponential, capped, with jitter. One implementation for the outbox,
//! the Telegram poller and the Discord reconnect loop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `first`, `2 × first`, `4 × first` … for attempt 1, 2, 3 …, capped at `cap`, with jitter.
pub fn retry_delay(attempt: u32, first: Duration, cap: Duration) -> Duration {
    let doublings = attempt.clamp(1, 20) - 1;
    jittered(first.saturating_mul(1 << doublings).min(cap))
}

/// `d` lengthened by up to 25 %, so many chats (or bots) retrying after one outage do not all
/// fire in the same instant. The clock's nanoseconds are random enough for that.
pub fn jittered(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(1.0 + f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_wait_and_is_capped() {
        let ms = Duration::from_millis;
        for (attempt, base) in [(0, 500), (1, 500), (2, 1000), (3, 2000)] {
            let d = retry_delay(attempt, ms(500), ms(30_000));
            assert!(
                d >= ms(base) && d <= ms(base).mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
        assert!(retry_delay(40, ms(500), ms(30_000)) <= ms(37_500));
    }
}
