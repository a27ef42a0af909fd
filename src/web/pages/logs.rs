//! Live logs: the newest lines of today's log file, then new lines as they are written (the
//! files are already redacted by the writer; the stream is redacted again on its way out).

use crate::gateway::api::ApiState;
use crate::logging::files;
use crate::web::Page;
use crate::web::layout::Ctx;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use maud::html;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

/// How much of the file's end the page starts with.
const TAIL: u64 = 64 * 1024;
/// How often an open logs page looks for new lines.
const EVERY: Duration = Duration::from_millis(500);

fn newest(s: &ApiState) -> Option<PathBuf> {
    files::list(&s.coordinator.config().state_dir().join("logs"))
        .pop()
        .map(|(_, p)| p)
}

/// The file's bytes from `from` on (at most `max`), and where they end.
fn read_from(path: &std::path::Path, from: u64, max: u64) -> (String, u64) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return (String::new(), from);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = if from > len {
        0
    } else {
        from.max(len.saturating_sub(max))
    };
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.take(max).read_to_end(&mut buf).is_err() {
        return (String::new(), from);
    }
    // Whole lines only: the rest comes with the next read.
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(end);
    (
        String::from_utf8_lossy(&buf).into_owned(),
        from + end as u64,
    )
}

pub async fn page(State(s): State<ApiState>, ctx: Ctx) -> Page {
    let text = match newest(&s) {
        Some(p) => {
            let (t, _) = read_from(&p, 0, TAIL);
            // Drop the first, likely partial, line of the tail.
            match t.split_once('\n') {
                Some((_, rest)) if t.len() as u64 >= TAIL / 2 => rest.to_string(),
                _ => t,
            }
        }
        None => String::new(),
    };
    Ok(ctx.page(
        "/logs",
        "Logs",
        html! {
            p.mute { "Today's log, newest at the bottom; new lines appear as they are written. The whole history: " code { "switchboard logs" } "." }
            pre.logs #log-lines tabindex="0" aria-label="Log lines" aria-live="off" { (s.redactor.redact(&text)) }
        },
    ))
}

pub async fn events(
    State(s): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = newest(&s).map(|p| {
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        (p, len)
    });
    let open = s.activity.stream();
    let stream = futures_util::stream::unfold((s, start, open), |(s, mut at, open)| async move {
        loop {
            tokio::select! {
                _ = s.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(EVERY) => {}
            }
            let Some(path) = newest(&s) else { continue };
            let from = match &at {
                Some((p, off)) if *p == path => *off,
                _ => 0, // a new day's file
            };
            let (text, end) = read_from(&path, from, 1 << 20);
            at = Some((path, end));
            if text.is_empty() {
                continue;
            }
            let clean = s.redactor.redact(text.trim_end_matches('\n')).into_owned();
            return Some((
                Ok(Event::default().event("lines").data(clean)),
                (s, at, open),
            ));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
