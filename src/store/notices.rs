//! When the owner was last told about each cause, so "at most once an hour per cause" also holds
//! across restarts (a crash loop must not become a notice loop).

use super::{Cached, Result, Store};
use rusqlite::{OptionalExtension, params};

impl Store {
    /// Claims the right to tell the owner about `cause` at `now` (ms): true, and recorded, when it
    /// was never told or last told at least `every_ms` ago (`None`: only ever once).
    pub async fn notice_claim(&self, cause: &str, now: i64, every_ms: Option<i64>) -> Result<bool> {
        let cause = cause.to_owned();
        self.write(move |tx| {
            let last: Option<i64> = tx
                .one(
                    "SELECT last_at FROM notices WHERE cause = ?1",
                    [&cause],
                    |r| r.get(0),
                )
                .optional()?;
            let due = match (last, every_ms) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(at), Some(every)) => now - at >= every || now < at,
            };
            if due {
                tx.run(
                    "INSERT INTO notices (cause, last_at) VALUES (?1, ?2)
                     ON CONFLICT (cause) DO UPDATE SET last_at = ?2, times = times + 1",
                    params![cause, now],
                )?;
            }
            Ok(due)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cause_is_claimed_once_per_window_or_once_ever() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let hour = 3_600_000;
        assert!(
            s.notice_claim("provider:anthropic:auth", 0, Some(hour))
                .await
                .unwrap()
        );
        assert!(
            !s.notice_claim("provider:anthropic:auth", hour - 1, Some(hour))
                .await
                .unwrap()
        );
        assert!(
            s.notice_claim("provider:moonshot:auth", 5, Some(hour))
                .await
                .unwrap()
        );
        assert!(
            s.notice_claim("provider:anthropic:auth", hour, Some(hour))
                .await
                .unwrap()
        );
        assert!(
            s.notice_claim("budget:daily:2026-12-03", 0, None)
                .await
                .unwrap()
        );
        assert!(
            !s.notice_claim("budget:daily:2026-12-03", 10 * hour, None)
                .await
                .unwrap()
        );
    }
}
