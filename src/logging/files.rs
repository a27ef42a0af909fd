//! Daily log files, `<stateDir>/logs/switchboard.YYYY-MM-DD.log`, dated in the config's zone by
//! the scheduler's clock (so tests can move days), and pruned past `logging.keepDays`.
//!
//! tracing-appender's own rolling appender dates files by the system clock only; its
//! non-blocking worker drives this writer instead.

use crate::cron::clock::Clock;
use chrono::NaiveDate;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const PREFIX: &str = "switchboard.";
pub const SUFFIX: &str = ".log";

pub struct DailyFile {
    dir: PathBuf,
    tz: chrono_tz::Tz,
    clock: Arc<dyn Clock>,
    keep_days: u32,
    current: Option<(NaiveDate, File)>,
}

impl DailyFile {
    pub fn new(dir: PathBuf, tz: chrono_tz::Tz, clock: Arc<dyn Clock>, keep_days: u32) -> Self {
        Self {
            dir,
            tz,
            clock,
            keep_days,
            current: None,
        }
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        let today = self.clock.now().with_timezone(&self.tz).date_naive();
        if self.current.as_ref().map(|(d, _)| *d) != Some(today) {
            std::fs::create_dir_all(&self.dir)?;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path_for(&self.dir, today))?;
            prune(&self.dir, today, self.keep_days);
            self.current = Some((today, f));
        }
        match &mut self.current {
            Some((_, f)) => Ok(f),
            None => Err(std::io::Error::other("no log file")),
        }
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.current {
            Some((_, f)) => f.flush(),
            None => Ok(()),
        }
    }
}

pub fn path_for(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!("{PREFIX}{}{SUFFIX}", day.format("%Y-%m-%d")))
}

/// The day of a log file's name, if it is one of ours.
pub fn day_of(name: &str) -> Option<NaiveDate> {
    let d = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()
}

/// Our log files in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<(NaiveDate, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| Some((day_of(&e.file_name().to_string_lossy())?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Removes files dated more than `keep_days` before `today`.
fn prune(dir: &Path, today: NaiveDate, keep_days: u32) {
    let Some(oldest) = today.checked_sub_days(chrono::Days::new(u64::from(keep_days))) else {
        return;
    };
    for (day, path) in list(dir) {
        if day < oldest {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use parking_lot::Mutex;

    struct Fixed(Mutex<DateTime<Utc>>);
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock()
        }
    }

    #[test]
    fn a_new_day_starts_a_new_file_and_old_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let clock = Arc::new(Fixed(Mutex::new(t("2026-03-01T23:59:00Z"))));
        let mut f = DailyFile::new(dir.path().into(), chrono_tz::UTC, clock.clone(), 2);
        f.write_all(b"one\n").unwrap();
        *clock.0.lock() = t("2026-03-02T00:00:01Z");
        f.write_all(b"two\n").unwrap();
        let names: Vec<String> = list(dir.path())
            .iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert_eq!(names, ["2026-03-01", "2026-03-02"]);
        *clock.0.lock() = t("2026-03-04T08:00:00Z");
        f.write_all(b"three\n").unwrap();
        let names: Vec<String> = list(dir.path())
            .iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert_eq!(
            names,
            ["2026-03-02", "2026-03-04"],
            "older than 2 days removed"
        );
    }
}
