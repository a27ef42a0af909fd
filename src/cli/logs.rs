//! `switchboard logs [-f] [--level L] [--since T] [--grep TEXT] [--json]`.

use super::UsageError;
use crate::config::Config;
use crate::logging::read::{self, Query};

pub(super) fn logs(
    c: &Config,
    follow: bool,
    level: Option<String>,
    since: Option<String>,
    grep: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let now = crate::cron::clock::from_env().now();
    let q = Query {
        level: level
            .as_deref()
            .map(read::parse_level)
            .transpose()
            .map_err(UsageError)?,
        since: since
            .as_deref()
            .map(|s| read::parse_since(s, now, c.tz()))
            .transpose()
            .map_err(UsageError)?,
        grep: grep.filter(|g| !g.is_empty()),
        json,
    };
    let dir = c.state_dir().join("logs");
    if crate::logging::files::list(&dir).is_empty() && !follow {
        eprintln!(
            "no log files in {} yet (the gateway writes them while it runs)",
            dir.display()
        );
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match read::run(&dir, &q, follow, &mut out) {
        Ok(_) => Ok(()),
        // `logs | head`: the reader went away, which is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", dir.display())),
    }
}
