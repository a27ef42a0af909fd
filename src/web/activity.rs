//! Giving back what the control room faulted in, once nobody is looking at it.
//!
//! Serving a page runs code the message path never runs (routing, templates, the queries of every
//! section), and the kernel maps each touched page of the binary with its neighbours: one visit
//! adds several MiB of clean code pages to the gateway's RSS, and they would stay for its whole
//! life. When the pages have been quiet for [`QUIET`] (no request, no open stream), the clean
//! read-only mappings are dropped again (`resident::pages`), as after start-up: nothing is lost,
//! the next visit reads them back from the page cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const QUIET: Duration = Duration::from_secs(60);
const CHECK_EVERY: Duration = Duration::from_secs(15);

#[derive(Default)]
pub struct Activity {
    /// The last request (ms since the epoch).
    last_ms: AtomicI64,
    /// Event streams open now (a chat or logs page left open).
    streams: AtomicUsize,
    /// Whether anything was served since pages were last dropped.
    dirty: AtomicBool,
}

/// Held by an open event stream.
pub struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Activity {
    pub fn touch(&self) {
        self.last_ms
            .store(crate::store::now_ms(), Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
    }

    pub fn stream(self: &Arc<Self>) -> StreamGuard {
        self.streams.fetch_add(1, Ordering::Relaxed);
        self.touch();
        StreamGuard(self.clone())
    }

    fn quiet(&self, now_ms: i64) -> bool {
        self.dirty.load(Ordering::Relaxed)
            && self.streams.load(Ordering::Relaxed) == 0
            && now_ms - self.last_ms.load(Ordering::Relaxed) >= QUIET.as_millis() as i64
    }

    /// Watches for quiet until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            if !self.quiet(crate::store::now_ms()) {
                continue;
            }
            self.dirty.store(false, Ordering::Relaxed);
            let bytes = tokio::task::spawn_blocking(crate::resident::pages::drop_clean_pages)
                .await
                .unwrap_or(0);
            tracing::debug!(
                kib = bytes / 1024,
                "control room quiet: dropped its code pages"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_only_when_idle_long_enough_and_no_stream_open() {
        let a = Arc::new(Activity::default());
        assert!(!a.quiet(crate::store::now_ms()), "nothing served yet");
        a.touch();
        let now = crate::store::now_ms();
        assert!(!a.quiet(now));
        let later = now + QUIET.as_millis() as i64;
        assert!(a.quiet(later));
        let g = a.stream();
        assert!(!a.quiet(later + 1), "a page is open");
        drop(g);
        assert!(a.quiet(crate::store::now_ms() + QUIET.as_millis() as i64));
    }
}
