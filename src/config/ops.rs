//! Proactive and accountable: `heartbeat`, `owner`, `budgets`, the prices of model calls
//! (`providers.NAME.prices`) and `logging`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `heartbeat`: a periodic, isolated run of `agent` with HEARTBEAT.md in its prompt.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeartbeatConfig {
    /// `"30m"`, `"2h"`, `"1h30m"` (at least one minute).
    pub every: String,
    /// `"08:00-22:00"` in the config's time zone (may wrap past midnight); always when absent.
    #[serde(default)]
    pub active_hours: Option<String>,
    /// Defaults to the coordinator.
    #[serde(default)]
    pub agent: Option<String>,
    /// Where a reply that is not `HEARTBEAT_OK` goes; defaults to `owner`.
    #[serde(default)]
    pub to: Option<String>,
    /// Replaces the built-in instruction of each run.
    #[serde(default)]
    pub prompt: Option<String>,
}

impl HeartbeatConfig {
    pub fn interval(&self) -> Result<Duration, String> {
        parse_every(&self.every)
    }

    pub fn hours(&self) -> Result<Option<ActiveHours>, String> {
        self.active_hours
            .as_deref()
            .map(ActiveHours::parse)
            .transpose()
    }
}

/// `"30m"`, `"2h"`, `"1h30m"`, `"90s"` → a duration of at least a minute.
pub fn parse_every(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a duration like \"30m\", \"2h\" or \"1h30m\"");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0u64;
    let mut num = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += n * match ch {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if total < 60 {
        return Err(format!("`{s}` is shorter than a minute"));
    }
    Ok(Duration::from_secs(total))
}

/// A daily window in local time, `start..end` minutes after midnight; wraps past midnight
/// when `end <= start` ("22:00-06:00").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    pub start: u32,
    pub end: u32,
}

impl ActiveHours {
    pub fn parse(s: &str) -> Result<ActiveHours, String> {
        let bad = || format!("`{s}` is not a window like \"08:00-22:00\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Result<u32, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            // 24:00 is the end of the day.
            if m > 59 || h > 24 || (h == 24 && m != 0) {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let (start, end) = (minute(a)?, minute(b)?);
        if start == end {
            return Err(format!("`{s}` is an empty window"));
        }
        Ok(ActiveHours { start, end })
    }

    /// Whether `minute` (after local midnight) is inside the window.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// `budgets`: spending limits in US dollars. A turn that would start past one is refused.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetsConfig {
    #[serde(default)]
    pub daily_usd: Option<f64>,
    #[serde(default)]
    pub monthly_usd: Option<f64>,
    /// Per-agent limits, on top of the gateway's.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentBudget>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentBudget {
    #[serde(default)]
    pub daily_usd: Option<f64>,
    #[serde(default)]
    pub monthly_usd: Option<f64>,
}

/// A model's price in US dollars per million tokens (`providers.NAME.prices.MODEL`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Prompt tokens read from the provider's cache; the input price when absent.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the cache; the input price when absent.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_windows_parse_and_bad_ones_say_why() {
        assert_eq!(parse_every("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_every("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_every("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_every("30").unwrap_err().contains("not a duration"));
        assert!(
            parse_every("10s")
                .unwrap_err()
                .contains("shorter than a minute")
        );
        assert!(parse_every("5x").is_err());
        let day = ActiveHours::parse("08:00-22:00").unwrap();
        assert!(day.contains(8 * 60) && day.contains(21 * 60 + 59));
        assert!(!day.contains(22 * 60) && !day.contains(7 * 60 + 59));
        let night = ActiveHours::parse("22:00-06:00").unwrap();
        assert!(night.contains(23 * 60) && night.contains(60) && !night.contains(12 * 60));
        assert!(
            ActiveHours::parse("08:00-24:00")
                .unwrap()
                .contains(23 * 60 + 59)
        );
        assert!(ActiveHours::parse("8-22").is_err());
        assert!(ActiveHours::parse("08:00-25:00").is_err());
        assert!(
            ActiveHours::parse("08:00-08:00")
                .unwrap_err()
                .contains("empty")
        );
    }
}

/// `logging`: what the gateway writes to stderr and to daily files in `<stateDir>/logs/`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a filter such as `info,switchboard=debug`;
    /// `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
    /// Daily files older than this many days are removed.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::default(),
            keep_days: default_keep_days(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

fn default_log_level() -> String {
    "info".into()
}

fn default_keep_days() -> u32 {
    14
}
