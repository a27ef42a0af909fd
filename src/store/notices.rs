//! When the owner was last told about each cause, so "at most once an hour per cause" also holds
//! across restarts (a crash loop must not become a notice loop).

use super::sql::p;
use super::{Result, Store};

impl Store {
    /// Claims the right to tell the owner about `cause` at `now` (ms): true, and recorded, when it
    /// was never told or last told at least `every_ms` ago (`None`: only ever once).
    pub async fn notice_claim(&self, cause: &str, now: i64, every_ms: Option<i64>) -> Result<bool> {
        let cause = cause.to_owned();
        self.write(move |tx| {
            let last: Option<i64> = tx.opt(
                "SELECT last_at FROM notices WHERE cause = ?1",
                p![cause],
                |r| r.get(0),
            )?;
            let due = match (last, every_ms) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(at), Some(every)) => now - at >= every || now < at,
            };
            if due {
                tx.run(
                    "INSERT INTO notices (cause, last_at) VALUES (?1, ?2)
                     ON CONFLICT (cause) DO UPDATE SET last_at = ?2, times = notices.times + 1",
                    p![cause, now],
                )?;
            }
            Ok(due)
        })
        .await
    }
}
