//! Logging: stderr plus daily files in `<stateDir>/logs/` (the gateway), in text or JSON, with
//! every secret the config holds (and anything shaped like a token) masked before a line is
//! written anywhere.
//!
//! Lines of a turn carry its ids through `tracing` spans (`inbound{inbox chat}`, `turn{agent
//! session}`, `task{task}`, `cron{job run}`), so `logs --grep 'chat=telegram:42'` finds a whole
//! conversation. File writes happen on tracing-appender's worker thread, off the runtime.

pub mod files;
pub mod read;
pub mod redact;

use crate::config::{Config, LogFormat};
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the file writer's worker alive; dropping it flushes what is buffered.
pub struct Logging {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Lines waiting for the file writer; past this, lines are dropped rather than blocking a turn
/// on a stuck disk (and the buffer costs ~20 KiB, not the default 128k lines' megabytes).
const BUFFERED_LINES: usize = 512;

/// Sets up logging. `config` (when it loaded) gives the format, time zone and secrets; with
/// `gateway` its `logging.level` applies and the daily files are written. Otherwise (CLI
/// commands) the level is `warn`. `RUST_LOG` overrides either.
pub fn init(config: Option<&Config>, gateway: bool) -> Logging {
    let level = match config {
        Some(c) if gateway => c.logging.level.as_str(),
        _ if gateway => "info",
        _ => "warn",
    };
    // The MCP SDK logs every session's start (with the server's whole instructions text) at
    // info: ours says what matters ("MCP server ready", restarts, failures).
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("{level},rmcp=warn")))
    };
    let redactor = Arc::new(redact::Redactor::new(
        &config.map(crate::config::secrets).unwrap_or_default(),
    ));
    let format = config.map_or(LogFormat::Text, |c| c.logging.format);
    let clock = crate::cron::clock::from_env();
    let tz = config.map(|c| c.tz()).unwrap_or(chrono_tz::UTC);
    let time = ClockTime {
        clock: clock.clone(),
        tz,
    };
    let stderr = redact::Redacting::new(std::io::stderr, redactor.clone());
    let stderr_layer = layer(format, stderr, time.clone(), true).with_filter(filter());
    let mut guard = None;
    let file_layer = match config.filter(|_| gateway) {
        Some(c) => {
            let daily =
                files::DailyFile::new(c.state_dir().join("logs"), tz, clock, c.logging.keep_days);
            let (writer, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(BUFFERED_LINES)
                .thread_name("switchboard-log")
                .finish(daily);
            guard = Some(g);
            let w = redact::Redacting::new(writer, redactor);
            Some(layer(format, w, time, false).with_filter(filter()))
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    Logging { _file: guard }
}

fn layer<S, W>(
    format: LogFormat,
    writer: W,
    time: ClockTime,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_timer(time)
        .with_target(false);
    match format {
        LogFormat::Text => {
            Box::new(base.with_ansi(ansi && std::io::IsTerminal::is_terminal(&std::io::stderr())))
        }
        LogFormat::Json => Box::new(base.json().with_ansi(false)),
    }
}

/// Times from the same clock the scheduler uses (the test clock in tests), in the config's
/// zone, so a line's time and the file it lands in agree.
#[derive(Clone)]
struct ClockTime {
    clock: Arc<dyn crate::cron::clock::Clock>,
    tz: chrono_tz::Tz,
}

impl FormatTime for ClockTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = self.clock.now().with_timezone(&self.tz);
        write!(w, "{}", now.format("%Y-%m-%dT%H:%M:%S%.3f%:z"))
    }
}
