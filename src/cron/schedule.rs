//! Schedules: 5-field cron expressions (and `@hourly`, `@daily`, `@weekly`, …) evaluated in an
//! IANA time zone with real DST rules.
//!
//! croner parses an expression and walks its wall-clock slots; we evaluate those slots on a
//! zone-less clock (naive local time read as UTC) and map each one to real instants ourselves,
//! because croner's own DST handling treats only single-value minute *and* hour fields as fixed
//! times, so `0 1,13 * * *` fired twice on fall-back day and `30 2,14 * * *` skipped its 02:30
//! slot on spring-forward day. The rules are cron's (vixie/cronie):
//!
//! - A *fixed-time* job — minute and hour fields that do not start with `*` (single values,
//!   lists, ranges) — fires once per wall-clock slot: a slot in a spring-forward gap fires once,
//!   right after the gap; a slot that occurs twice on fall-back day fires at its first occurrence.
//! - An *interval* job — `*` or `*/N` in the minute or hour field, `@hourly` — follows real
//!   time: slots inside a gap do not exist, and a repeated hour runs again.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    fixed: bool,
}

/// No zone has ever shifted its clocks by more than this at once; walking wall-clock slots from
/// this far before an instant cannot miss a slot that maps after it.
const MAX_SHIFT: Duration = Duration::hours(3);

impl Schedule {
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, String> {
        let trimmed = expr.trim();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if !trimmed.starts_with('@') && fields.len() != 5 {
            return Err(format!(
                "`{expr}` has {} fields; use 5 (minute hour day-of-month month day-of-week), e.g. \"0 9 * * *\", or @hourly/@daily/@weekly",
                fields.len()
            ));
        }
        let cron =
            Cron::from_str(expr).map_err(|e| format!("`{expr}` is not a valid schedule: {e}"))?;
        let tz = tz
            .parse::<Tz>()
            .map_err(|_| format!("`{tz}` is not an IANA time zone (e.g. Europe/London)"))?;
        let fixed = if trimmed.starts_with('@') {
            !trimmed.eq_ignore_ascii_case("@hourly")
        } else {
            !fields[0].starts_with('*') && !fields[1].starts_with('*')
        };
        Ok(Schedule { cron, tz, fixed })
    }

    /// Whether the job is a fixed-time one (see the module docs).
    pub fn is_fixed_time(&self) -> bool {
        self.fixed
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut wall = Utc.from_utc_datetime(&(self.local(t) - MAX_SHIFT));
        let mut best: Option<DateTime<Utc>> = None;
        // Slots map to instants out of order only within a repeated hour, so once a candidate is
        // found, slots up to MAX_SHIFT of wall time past it may still map earlier. Bounded: a
        // slot exists within a few years for any valid expression, else croner says none.
        for _ in 0..100_000 {
            wall = match self.cron.find_next_occurrence(&wall, false) {
                Ok(w) => w,
                Err(_) => break,
            };
            if best.is_some_and(|b| wall.naive_utc() > self.local(b) + MAX_SHIFT) {
                break;
            }
            if let Some(at) = self.instants(wall.naive_utc()).find(|i| *i > t) {
                best = Some(best.map_or(at, |b| b.min(at)));
            }
        }
        best
    }

    /// The latest slot in `(from, to]`, and the first slot after `to`. Used to catch up after
    /// downtime: however many slots were missed, only the latest may fire.
    pub fn latest_and_next(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let next = self.next_after(to);
        // Walk back over wall-clock slots from just after `to` to the first that maps into range.
        let mut wall = Utc.from_utc_datetime(&(self.local(to) + MAX_SHIFT));
        for _ in 0..100_000 {
            let Ok(prev) = self.cron.find_previous_occurrence(&wall, false) else {
                break;
            };
            wall = prev;
            let latest = self.instants(wall.naive_utc()).filter(|i| *i <= to).last();
            match latest {
                Some(i) if i > from => return (Some(i), next),
                Some(_) => break,
                None => {}
            }
            if wall.naive_utc() < self.local(from) - MAX_SHIFT {
                break;
            }
        }
        (None, next)
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    /// The instants a wall-clock slot fires at: one, none (an interval job's slot in a gap), or
    /// two (an interval job's slot in a repeated hour).
    fn instants(&self, wall: NaiveDateTime) -> impl Iterator<Item = DateTime<Utc>> {
        let utc = |d: DateTime<Tz>| d.with_timezone(&Utc);
        let (first, second) = match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(d) => (Some(utc(d)), None),
            LocalResult::Ambiguous(a, b) if self.fixed => (Some(utc(a.min(b))), None),
            LocalResult::Ambiguous(a, b) => (Some(utc(a.min(b))), Some(utc(a.max(b)))),
            LocalResult::None if self.fixed => (self.gap_end(wall), None),
            LocalResult::None => (None, None),
        };
        first.into_iter().chain(second)
    }

    /// The first instant whose local time is at or past `wall`, which falls in a gap: the moment
    /// the clocks jumped.
    fn gap_end(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        // UTC offsets lie within −12 h and +14 h, so the instant is within these bounds.
        let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0);
        let guess = wall.and_utc().timestamp();
        let (mut lo, mut hi) = (guess - 15 * 3600, guess + 13 * 3600);
        if self.local(at(hi)?) < wall {
            return None;
        }
        // Local time is monotonic across a spring-forward gap; bisect to the second.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local(at(mid)?) >= wall {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        at(hi)
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

    /// The slots after `from`, `n` of them.
    fn fires(expr: &str, tz: &str, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let s = Schedule::parse(expr, tz).unwrap();
        let mut t = utc(from);
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                t
            })
            .collect()
    }

    /// Both 2027 transitions in five zones (whole-hour, 45-minute offset, southern hemisphere,
    /// midnight transitions), checked against what cronie does: fixed-time slots fire once
    /// (skipped ones right after the gap, repeated ones at their first occurrence), interval
    /// slots follow real time.
    #[test]
    fn dst_table_2027() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            // New York: 2027-03-14 02:00 EST → 03:00 EDT; 2027-11-07 02:00 EDT → 01:00 EST.
            (
                "0 1,13 * * *",
                "America/New_York",
                "2027-11-06T18:00:00Z",
                &[
                    "2027-11-07T05:00:00Z",
                    "2027-11-07T18:00:00Z",
                    "2027-11-08T06:00:00Z",
                ],
            ),
            (
                "30 2,14 * * *",
                "America/New_York",
                "2027-03-13T20:00:00Z",
                &[
                    "2027-03-14T07:00:00Z",
                    "2027-03-14T18:30:00Z",
                    "2027-03-15T06:30:00Z",
                ],
            ),
            (
                "0,30 2 * * *",
                "America/New_York",
                "2027-03-14T06:30:00Z",
                &["2027-03-14T07:00:00Z", "2027-03-15T06:00:00Z"],
            ),
            (
                "1-2 1 * * *",
                "America/New_York",
                "2027-11-07T04:00:00Z",
                &[
                    "2027-11-07T05:01:00Z",
                    "2027-11-07T05:02:00Z",
                    "2027-11-08T06:01:00Z",
                ],
            ),
            (
                "*/30 1 * * *",
                "America/New_York",
                "2027-11-07T04:00:00Z",
                &[
                    "2027-11-07T05:00:00Z",
                    "2027-11-07T05:30:00Z",
                    "2027-11-07T06:00:00Z",
                    "2027-11-07T06:30:00Z",
                    "2027-11-08T06:00:00Z",
                ],
            ),
            (
                "0 * * * *",
                "America/New_York",
                "2027-03-14T06:30:00Z",
                &["2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z"],
            ),
            // London: 2027-03-28 01:00 GMT → 02:00 BST; 2027-10-31 02:00 BST → 01:00 GMT.
            (
                "30 1 * * *",
                "Europe/London",
                "2027-03-27T12:00:00Z",
                &["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"],
            ),
            (
                "15 1,23 * * *",
                "Europe/London",
                "2027-10-30T12:00:00Z",
                &[
                    "2027-10-30T22:15:00Z",
                    "2027-10-31T00:15:00Z",
                    "2027-10-31T23:15:00Z",
                ],
            ),
            // Sydney: 2027-04-04 03:00 AEDT → 02:00 AEST; 2027-10-03 02:00 AEST → 03:00 AEDT.
            (
                "30 2 * * *",
                "Australia/Sydney",
                "2027-04-03T12:00:00Z",
                &["2027-04-03T15:30:00Z", "2027-04-04T16:30:00Z"],
            ),
            (
                "0 2,14 * * *",
                "Australia/Sydney",
                "2027-10-02T10:00:00Z",
                &[
                    "2027-10-02T16:00:00Z",
                    "2027-10-03T03:00:00Z",
                    "2027-10-03T15:00:00Z",
                ],
            ),
            // Chatham (+12:45/+13:45): 2027-04-04 03:45 → 02:45; 2027-09-26 02:45 → 03:45.
            (
                "0 3 * * *",
                "Pacific/Chatham",
                "2027-04-03T10:00:00Z",
                &["2027-04-03T13:15:00Z", "2027-04-04T14:15:00Z"],
            ),
            (
                "0 3 * * *",
                "Pacific/Chatham",
                "2027-09-25T10:00:00Z",
                &["2027-09-25T14:00:00Z", "2027-09-26T13:15:00Z"],
            ),
            // Santiago: 2027-04-04 00:00 -03 → 2027-04-03 23:00 -04; 2027-09-05 00:00 -04 → 01:00 -03.
            (
                "30 23 * * *",
                "America/Santiago",
                "2027-04-03T12:00:00Z",
                &["2027-04-04T02:30:00Z", "2027-04-05T03:30:00Z"],
            ),
            (
                "@daily",
                "America/Santiago",
                "2027-09-04T12:00:00Z",
                &["2027-09-05T04:00:00Z", "2027-09-06T03:00:00Z"],
            ),
            (
                "0 0,12 * * *",
                "America/Santiago",
                "2027-09-04T12:00:00Z",
                &[
                    "2027-09-04T16:00:00Z",
                    "2027-09-05T04:00:00Z",
                    "2027-09-05T15:00:00Z",
                ],
            ),
        ];
        for (expr, tz, from, want) in cases {
            let got: Vec<String> = fires(expr, tz, from, want.len())
                .iter()
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .collect();
            assert_eq!(&got, want, "{expr} in {tz} after {from}");
        }
    }

    /// Over all of 2027, a fixed-time job with two slots a day fires exactly 730 times in every
    /// zone (never twice, never missing), and an hourly job once per real hour.
    #[test]
    fn a_year_of_slots_fires_each_once() {
        let zones = [
            "America/New_York",
            "Europe/London",
            "Australia/Sydney",
            "Pacific/Chatham",
            "America/Santiago",
        ];
        for tz_name in zones {
            let tz: Tz = tz_name.parse().unwrap();
            let start = tz
                .with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
                - Duration::seconds(1);
            let end = tz
                .with_ymd_and_hms(2028, 1, 1, 0, 0, 0)
                .unwrap()
                .with_timezone(&Utc);
            for (expr, want) in [
                ("0 1,13 * * *", 730),
                ("30 2,14 * * *", 730),
                ("0 0,12 * * *", 730),
                ("45 2,14 * * *", 730),
                ("0 * * * *", 8760),
            ] {
                let s = Schedule::parse(expr, tz_name).unwrap();
                let (mut t, mut n, mut last) = (start, 0, None);
                while let Some(next) = s.next_after(t).filter(|n| *n < end) {
                    assert!(last.is_none_or(|l| next > l), "{expr} {tz_name} went back");
                    last = Some(next);
                    t = next;
                    n += 1;
                }
                assert_eq!(n, want, "{expr} in {tz_name}");
            }
        }
    }

    #[test]
    fn catch_up_across_a_repeated_hour_fires_the_first_occurrence_once() {
        // Down from 00:00 to 03:00 EST on fall-back day: the 01:30 slot is the latest, once.
        let s = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
        let (latest, next) =
            s.latest_and_next(utc("2027-11-07T04:00:00Z"), utc("2027-11-07T08:00:00Z"));
        assert_eq!(latest, Some(utc("2027-11-07T05:30:00Z")));
        assert_eq!(next, Some(utc("2027-11-08T06:30:00Z")));
        // Nothing missed in range.
        let (latest, _) =
            s.latest_and_next(utc("2027-11-07T05:30:00Z"), utc("2027-11-07T08:00:00Z"));
        assert_eq!(latest, None);
        // A skipped slot counts as fired right after the gap.
        let s = Schedule::parse("30 2 * * *", "America/New_York").unwrap();
        let (latest, _) =
            s.latest_and_next(utc("2027-03-14T06:00:00Z"), utc("2027-03-14T09:00:00Z"));
        assert_eq!(latest, Some(utc("2027-03-14T07:00:00Z")));
    }
}
