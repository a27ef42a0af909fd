//! Usage as people read it: `/usage` in a chat, `switchboard usage`, the status page.

use super::{Ledger, day_start, month_of, usd};
use crate::store::{Store, UsageLine};
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// `--since`: `today`, `month`, `Nd` (the last N days, today included) or a date `YYYY-MM-DD`,
/// as ms since the epoch in `tz`.
pub fn since(spec: &str, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<i64, String> {
    let today = now.with_timezone(&tz).date_naive();
    let s = spec.trim().to_ascii_lowercase();
    let day = match s.as_str() {
        "today" => today,
        "yesterday" => today.pred_opt().unwrap_or(today),
        "month" => month_of(today),
        _ => {
            if let Some(n) = s.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
                if n < 1 {
                    return Err(format!("`{spec}`: the number of days must be at least 1"));
                }
                today - Duration::days(n - 1)
            } else {
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| {
                    format!("`{spec}` is not a date (YYYY-MM-DD), `today`, `month` or a number of days like `7d`")
                })?
            }
        }
    };
    Ok(day_start(tz, day))
}

/// Tokens in thousands past 10,000 ("12.3k").
pub fn tokens(n: u64) -> String {
    if n >= 10_000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        n.to_string()
    }
}

/// "3 calls, 1200 in / 340 out (cache 800 read), $0.0123".
pub fn describe(l: &UsageLine) -> String {
    let mut out = format!(
        "{} call{}, {} in / {} out",
        l.calls,
        if l.calls == 1 { "" } else { "s" },
        tokens(l.input),
        tokens(l.output)
    );
    if l.cache_read + l.cache_write > 0 {
        out.push_str(&format!(
            " (cache {} read, {} written)",
            tokens(l.cache_read),
            tokens(l.cache_write)
        ));
    }
    out.push_str(&format!(", {}", usd(l.cost_micros)));
    if l.unpriced > 0 {
        out.push_str(&format!(" ({} unpriced)", l.unpriced));
    }
    out
}

/// `/usage`: this chat today and this month, and the budget when one is set.
pub async fn for_chat(
    store: &Store,
    ledger: &Ledger,
    chat: &str,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> String {
    let today = now.with_timezone(&tz).date_naive();
    let until = now.timestamp_millis() + 1;
    let day = store
        .usage_total(day_start(tz, today), until, Some(chat))
        .await;
    let month = store
        .usage_total(day_start(tz, month_of(today)), until, Some(chat))
        .await;
    let (day, month) = match (day, month) {
        (Ok(d), Ok(m)) => (d, m),
        (Err(e), _) | (_, Err(e)) => return format!("⚠️ cannot read usage: {e}"),
    };
    let mut out = format!(
        "Usage in this chat\nToday: {}\nThis month: {}",
        describe(&day),
        describe(&month)
    );
    let b = ledger.budgets();
    let (spent_day, spent_month) = ledger.spent().await;
    if let Some(limit) = b.daily_usd {
        out.push_str(&format!(
            "\nAll chats today: {} of the {} daily budget",
            usd(spent_day),
            usd((limit * 1e6).round() as i64)
        ));
    }
    if let Some(limit) = b.monthly_usd {
        out.push_str(&format!(
            "\nAll chats this month: {} of the {} monthly budget",
            usd(spent_month),
            usd((limit * 1e6).round() as i64)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_days_dates_and_says_what_is_wrong() {
        let tz: chrono_tz::Tz = "Europe/London".parse().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-12-04T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let midnight = |d: &str| DateTime::parse_from_rfc3339(d).unwrap().timestamp_millis();
        assert_eq!(
            since("today", now, tz),
            Ok(midnight("2026-12-04T00:00:00Z"))
        );
        assert_eq!(since("7d", now, tz), Ok(midnight("2026-11-28T00:00:00Z")));
        assert_eq!(
            since("month", now, tz),
            Ok(midnight("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            since("2026-07-01", now, tz),
            Ok(midnight("2026-06-30T23:00:00Z"))
        );
        assert!(since("0d", now, tz).is_err());
        assert!(
            since("last week", now, tz)
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
    }

    #[test]
    fn a_line_reads_as_calls_tokens_and_dollars() {
        let l = UsageLine {
            calls: 2,
            input: 12_345,
            output: 300,
            cache_read: 1000,
            cost_micros: 52_000,
            unpriced: 1,
            ..UsageLine::default()
        };
        assert_eq!(
            describe(&l),
            "2 calls, 12.3k in / 300 out (cache 1000 read, 0 written), $0.05 (1 unpriced)"
        );
    }
}
