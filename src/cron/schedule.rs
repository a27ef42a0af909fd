//! Schedules: 5-field cron expressions (and `@hourly`, `@daily`, `@weekly`) evaluated in an IANA
//! time zone with real DST rules. Parsing and evaluation are croner's (it follows vixie-cron on DST:
//! a fixed time that does not exist on spring-forward day fires right after the gap, and one that
//! occurs twice on fall-back day fires once).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, String> {
        let fields = expr.split_whitespace().count();
        if !expr.trim_start().starts_with('@') && fields != 5 {
            return Err(format!(
                "`{expr}` has {fields} fields; use 5 (minute hour day-of-month month day-of-week), e.g. \"0 9 * * *\", or @hourly/@daily/@weekly"
            ));
        }
        let cron =
            Cron::from_str(expr).map_err(|e| format!("`{expr}` is not a valid schedule: {e}"))?;
        let tz = tz
            .parse::<Tz>()
            .map_err(|_| format!("`{tz}` is not an IANA time zone (e.g. Europe/London)"))?;
        Ok(Schedule { cron, tz })
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }

    /// The latest slot in `(from, to]`, and the first slot after `to`. Used to catch up after
    /// downtime: however many slots were missed, only the latest may fire.
    pub fn latest_and_next(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let mut latest = None;
        let mut cur = from;
        // Bounded: a minutely job missed for a year is 525,600 slots; stop early and jump.
        for _ in 0..10_000 {
            match self.next_after(cur) {
                Some(n) if n <= to => {
                    latest = Some(n);
                    cur = n;
                }
                other => return (latest, other),
            }
        }
        let prev = self
            .cron
            .find_previous_occurrence(&to.with_timezone(&self.tz), true)
            .ok()
            .map(|p| p.with_timezone(&Utc));
        (prev.or(latest), self.next_after(to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn nine_am_london_across_both_dst_changes() {
        let s = Schedule::parse("0 9 * * *", "Europe/London").unwrap();
        // Before spring forward (GMT): 09:00 local is 09:00 UTC.
        assert_eq!(
            s.next_after(utc("2026-03-28T10:00:00Z")),
            Some(utc("2026-03-29T08:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-03-27T10:00:00Z")),
            Some(utc("2026-03-28T09:00:00Z"))
        );
        // After fall back (BST → GMT on 2026-10-25).
        assert_eq!(
            s.next_after(utc("2026-10-24T09:00:00Z")),
            Some(utc("2026-10-25T09:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-10-23T12:00:00Z")),
            Some(utc("2026-10-24T08:00:00Z"))
        );
    }

    #[test]
    fn nonexistent_and_repeated_local_times_fire_once() {
        // 02:30 does not exist in New York on 2026-03-08 (02:00 → 03:00): fires once, right after.
        let s = Schedule::parse("30 2 * * *", "America/New_York").unwrap();
        let first = s.next_after(utc("2026-03-08T05:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-03-08T07:00:00Z"), "03:00 EDT");
        let second = s.next_after(first).unwrap();
        assert_eq!(
            second,
            utc("2026-03-09T06:30:00Z"),
            "02:30 EDT the next day"
        );
        // 01:30 happens twice on 2026-11-01 (fall back): fires once.
        let s = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
        let first = s.next_after(utc("2026-11-01T04:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-11-01T05:30:00Z"), "01:30 EDT");
        let second = s.next_after(first).unwrap();
        assert_eq!(
            second,
            utc("2026-11-02T06:30:00Z"),
            "not again at 01:30 EST"
        );
    }

    #[test]
    fn nicknames_and_bad_input() {
        let s = Schedule::parse("@hourly", "UTC").unwrap();
        assert_eq!(
            s.next_after(utc("2026-01-01T10:15:00Z")),
            Some(utc("2026-01-01T11:00:00Z"))
        );
        let s = Schedule::parse("@daily", "UTC").unwrap();
        assert_eq!(
            s.next_after(utc("2026-01-01T10:15:00Z")),
            Some(utc("2026-01-02T00:00:00Z"))
        );
        assert!(
            Schedule::parse("0 9 * *", "UTC")
                .unwrap_err()
                .contains("4 fields")
        );
        assert!(
            Schedule::parse("0 25 * * *", "UTC")
                .unwrap_err()
                .contains("not a valid schedule")
        );
        assert!(
            Schedule::parse("0 9 * * *", "Mars/Base")
                .unwrap_err()
                .contains("IANA")
        );
    }

    #[test]
    fn catch_up_finds_only_the_latest_missed_slot() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 1, 1, 11, 30, 0).unwrap();
        let (latest, next) = s.latest_and_next(from, to);
        assert_eq!(
            latest,
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap())
        );
        assert_eq!(
            next,
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap())
        );
    }
}
