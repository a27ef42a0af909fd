//! `switchboard logs`: reads the daily files (the gateway need not run), filtered by level, time
//! and text, optionally following new lines.
//!
//! Built for gigabytes: files are read in large chunks and, with `--grep`, searched with
//! memchr's SIMD substring finder over the whole chunk; only lines that contain the text are
//! split out and checked for level and time.

use super::files;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use std::io::{Read, Seek, Write};
use std::path::Path;
use tracing::Level;

#[derive(Debug, Default, Clone)]
pub struct Query {
    /// Lines at this level or more severe.
    pub level: Option<Level>,
    pub since: Option<DateTime<Utc>>,
    pub grep: Option<String>,
    /// Print each line as a JSON object (text lines are converted).
    pub json: bool,
}

const CHUNK: usize = 8 << 20;

/// `"warn"` → `Level::WARN`.
pub fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>()
        .map_err(|_| format!("`{s}` is not a level (error, warn, info, debug, trace)"))
}

/// `10m`, `2h`, `3d` ago; `HH:MM` today; `YYYY-MM-DD`; `YYYY-MM-DD HH:MM`; or RFC 3339.
pub fn parse_since(
    s: &str,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "`{s}` is not a time: use 10m, 2h, 3d (ago), HH:MM (today), YYYY-MM-DD, \"YYYY-MM-DD HH:MM\" or RFC 3339"
        )
    };
    if let Some(unit) = t.chars().last().filter(|c| "smhd".contains(*c))
        && let Ok(n) = t[..t.len() - 1].parse::<i64>()
    {
        let secs = n * match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => 86_400,
        };
        return Ok(now - chrono::Duration::seconds(secs));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    let local = |naive: chrono::NaiveDateTime| {
        tz.from_local_datetime(&naive)
            .earliest()
            .map(|d| d.with_timezone(&Utc))
            .ok_or_else(bad)
    };
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?);
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M") {
        return local(d);
    }
    if let Ok(hm) = chrono::NaiveTime::parse_from_str(t, "%H:%M") {
        let today = now.with_timezone(&tz).date_naive();
        return local(today.and_time(hm));
    }
    Err(bad())
}

/// A log line's time and level, from either format.
fn fields(line: &[u8]) -> (Option<DateTime<FixedOffset>>, Option<Level>) {
    let text = String::from_utf8_lossy(line);
    if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let time = v["timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        let level = v["level"].as_str().and_then(|l| l.parse().ok());
        return (time, level);
    }
    let mut words = text.split_whitespace();
    let time = words
        .next()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let level = words.next().and_then(|l| l.parse().ok());
    (time, level)
}

fn to_json(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    if text.starts_with('{') {
        return text.into_owned();
    }
    let mut parts = text.splitn(3, char::is_whitespace);
    let time = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    // Text lines pad the level: "TIME  INFO message" splits into "", "INFO message".
    let rest = if rest.is_empty() {
        parts.next().unwrap_or_default()
    } else {
        let tail = parts.next().unwrap_or_default();
        return serde_json::json!({ "timestamp": time, "level": rest, "message": tail })
            .to_string();
    };
    let (level, message) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    serde_json::json!({ "timestamp": time, "level": level, "message": message.trim_start() })
        .to_string()
}

struct Filter<'q> {
    q: &'q Query,
    finder: Option<memchr::memmem::Finder<'q>>,
}

impl<'q> Filter<'q> {
    fn new(q: &'q Query) -> Self {
        Self {
            q,
            finder: q
                .grep
                .as_deref()
                .map(|g| memchr::memmem::Finder::new(g.as_bytes())),
        }
    }

    fn keeps(&self, line: &[u8]) -> bool {
        if self.q.level.is_none() && self.q.since.is_none() {
            return true;
        }
        let (time, level) = fields(line);
        if let Some(min) = self.q.level
            && level.is_none_or(|l| l > min)
        {
            return false;
        }
        if let Some(since) = self.q.since
            && time.is_none_or(|t| t < since)
        {
            return false;
        }
        true
    }

    fn emit(&self, line: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        if self.q.json {
            out.write_all(to_json(line).as_bytes())?;
        } else {
            out.write_all(line)?;
        }
        out.write_all(b"\n")
    }

    /// Filters the complete lines of `buf` into `out`; returns how many were printed.
    fn chunk(&self, buf: &[u8], out: &mut impl Write) -> std::io::Result<u64> {
        let mut n = 0;
        match &self.finder {
            Some(f) => {
                let mut from = 0;
                while let Some(i) = f.find(&buf[from..]) {
                    let at = from + i;
                    let start = memchr::memrchr(b'\n', &buf[..at]).map_or(0, |p| p + 1);
                    let end = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |p| at + p);
                    let line = &buf[start..end];
                    if self.keeps(line) {
                        self.emit(line, out)?;
                        n += 1;
                    }
                    from = (end + 1).min(buf.len());
                    if from >= buf.len() {
                        break;
                    }
                }
            }
            None => {
                for line in buf.split(|b| *b == b'\n') {
                    if !line.is_empty() && self.keeps(line) {
                        self.emit(line, out)?;
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }
}

/// Reads `file` from `offset` to its end, feeding whole lines to the filter; returns the offset
/// after the last complete line read.
fn scan(
    path: &Path,
    offset: u64,
    f: &Filter,
    out: &mut impl Write,
    n: &mut u64,
) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut pos = offset;
    loop {
        let read = file.read(&mut buf[filled..])?;
        if read == 0 {
            break;
        }
        filled += read;
        // Only complete lines; the tail waits for the next read.
        let Some(last_nl) = memchr::memrchr(b'\n', &buf[..filled]) else {
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0); // one line longer than a chunk
            }
            continue;
        };
        *n += f.chunk(&buf[..last_nl], out)?;
        pos += (last_nl + 1) as u64;
        buf.copy_within(last_nl + 1..filled, 0);
        filled -= last_nl + 1;
    }
    Ok(pos)
}

/// Prints the matching lines of every log file in `dir`; with `follow`, then waits for more
/// (also across midnight, into the next day's file) until interrupted.
pub fn run(dir: &Path, q: &Query, follow: bool, out: &mut impl Write) -> std::io::Result<u64> {
    let f = Filter::new(q);
    let since_day = q.since.map(|s| s.date_naive());
    let mut n = 0;
    let mut last: Option<(std::path::PathBuf, u64)> = None;
    for (day, path) in files::list(dir) {
        // A file holds one local day; a day before `since` (with a day of slack for the zone)
        // cannot hold a matching line.
        if since_day.is_some_and(|s| day < s - chrono::Days::new(1)) {
            continue;
        }
        let end = scan(&path, 0, &f, out, &mut n)?;
        last = Some((path, end));
    }
    out.flush()?;
    if !follow {
        return Ok(n);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let newest = files::list(dir).pop();
        if let Some((_, path)) = newest {
            let from = match &last {
                Some((p, off)) if *p == path => *off,
                Some((p, off)) => {
                    // The day changed: finish the old file, then start the new one.
                    scan(p, *off, &f, out, &mut n)?;
                    0
                }
                None => 0,
            };
            let end = scan(&path, from, &f, out, &mut n)?;
            last = Some((path, end));
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_filtered_by_text_level_and_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("switchboard.2026-03-01.log"),
            "2026-03-01T10:00:00.000+00:00  INFO inbound{chat=telegram:1}: hello\n\
             2026-03-01T11:00:00.000+00:00  WARN inbound{chat=telegram:2}: slow model\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("switchboard.2026-03-02.log"),
            "{\"timestamp\":\"2026-03-02T09:00:00.000+00:00\",\"level\":\"ERROR\",\"fields\":{\"message\":\"telegram:2 down\"}}\n",
        )
        .unwrap();
        let get = |q: Query| {
            let mut out = Vec::new();
            run(dir.path(), &q, false, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let all = get(Query::default());
        assert_eq!(all.lines().count(), 3);
        let g = get(Query {
            grep: Some("telegram:2".into()),
            ..Default::default()
        });
        assert_eq!(g.lines().count(), 2, "{g}");
        let w = get(Query {
            level: Some(Level::WARN),
            ..Default::default()
        });
        assert_eq!(w.lines().count(), 2, "{w}");
        let since = parse_since("2026-03-01 10:30", Utc::now(), chrono_tz::UTC).unwrap();
        let s = get(Query {
            since: Some(since),
            json: true,
            ..Default::default()
        });
        let first: serde_json::Value = serde_json::from_str(s.lines().next().unwrap()).unwrap();
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["message"], "inbound{chat=telegram:2}: slow model");
        assert_eq!(s.lines().count(), 2);
    }

    #[test]
    fn since_accepts_relative_and_calendar_times() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tz = chrono_tz::Europe::Berlin;
        assert_eq!(
            parse_since("2h", now, tz).unwrap().to_rfc3339(),
            "2026-03-01T10:00:00+00:00"
        );
        assert_eq!(
            parse_since("09:00", now, tz).unwrap().to_rfc3339(),
            "2026-03-01T08:00:00+00:00"
        );
        assert!(parse_since("yesterday", now, tz).is_err());
    }
}
