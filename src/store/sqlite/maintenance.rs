//! The maintenance thread: indexing new conversation turns for search and checkpointing the WAL,
//! on a connection of its own, only while the gateway writes.

use super::super::memory;
use super::super::sql::Db;
use super::engine::Engine;
use std::path::Path;
use std::sync::{Arc, Weak};

/// A flag with a condition variable: `poke` sets it (waking the waiter only when it was clear,
/// so a busy writer pays one atomic check, not a syscall, per write). Beside it, whether the
/// maintenance thread has caught up (see [`Poke::caught_up`]).
pub(super) struct Poke {
    set: std::sync::atomic::AtomicBool,
    lock: std::sync::Mutex<()>,
    cond: std::sync::Condvar,
    quiet: tokio::sync::watch::Sender<bool>,
}

impl Default for Poke {
    fn default() -> Self {
        Poke {
            set: Default::default(),
            lock: Default::default(),
            cond: Default::default(),
            quiet: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Poke {
    pub(super) fn poke(&self) {
        use std::sync::atomic::Ordering;
        if !self.set.swap(true, Ordering::AcqRel) {
            let _guard = self.lock.lock();
            self.cond.notify_one();
        }
    }

    /// Waits until poked or `timeout` passes; clears the flag. True if poked.
    pub(super) fn wait(&self, timeout: std::time::Duration) -> bool {
        use std::sync::atomic::Ordering;
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let (_guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |_| !self.set.load(Ordering::Acquire))
            .unwrap_or_else(|e| e.into_inner());
        self.set.swap(false, Ordering::AcqRel)
    }

    /// Resolves once the maintenance thread has found nothing left to do since it started (the
    /// start-up's writes indexed and checkpointed). Start-up's page drop waits for it: the first
    /// rounds run SQLite's checkpoint and the indexer, whose code would otherwise fault back in
    /// (~2.5 MiB) right after the drop.
    pub(super) async fn caught_up(&self) {
        let mut quiet = self.quiet.subscribe();
        let _ = quiet.wait_for(|q| *q).await;
    }
}

/// WAL frames (4 KiB pages) past which the checkpointer makes the log start over.
const WAL_RESTART_FRAMES: i64 = 4_096;

/// The maintenance thread: every half second while the gateway writes it indexes new
/// conversation turns for search (see `memory`), as writes of the writer's (one writer, so it
/// never contends for the write lock), then checkpoints the WAL on the reader's connection. It
/// has no connection of its own: a third one cost ~130 KB of an idle gateway's memory. Once a
/// round finds nothing to do it sleeps until the next write (or a minute, for writes by another
/// process), so an idle gateway does not wake it. PASSIVE never
/// blocks writers, but under a steady stream of commits it never catches up with the newest
/// frame, and SQLite only starts the log over once everything is copied back: the WAL grew to
/// 2 GB in a 20,000-message burst. So when the log passes [`WAL_RESTART_FRAMES`], a RESTART
/// checkpoint briefly holds writers back until the log can start over (and `journal_size_limit`
/// trims the file). The thread ends with the store, or when the database file goes away (a
/// test's temp dir).
pub(super) fn spawn_maintenance(path: &Path, engine: Weak<Engine>, poked: Arc<Poke>) {
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("db-maintenance".into())
        // It only waits and hands work to the database threads.
        .stack_size(64 * 1024)
        .spawn(move || {
            let busy_pause = std::time::Duration::from_millis(500);
            let mut quiet = false;
            let mut last_log = -1;
            loop {
                if quiet {
                    poked.wait(std::time::Duration::from_secs(60));
                }
                // Let a burst of writes gather into one round.
                std::thread::sleep(busy_pause);
                let Some(engine) = engine.upgrade() else {
                    return; // the store is gone
                };
                if !path.exists() {
                    return;
                }
                // Index conversation turns for search, a batch at a time.
                let mut indexed = 0;
                loop {
                    match engine.write_wait(|c| {
                        memory::index_new_turns(&Db::sqlite(c, "local"), memory::TURN_BATCH)
                    }) {
                        Ok(n) if n as i64 == memory::TURN_BATCH => indexed += n,
                        Ok(n) => {
                            indexed += n;
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "indexing turns failed");
                            break;
                        }
                    }
                }
                // (frames in the log, frames copied back into the database).
                let passive = engine.scan_wait(|c| {
                    Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })?)
                });
                let log = passive.as_ref().map_or(-1, |p| p.0);
                // Nothing more to do: every frame is copied back, or none moved since the last
                // round (a reader holds them; the next write pokes us again).
                quiet = indexed == 0
                    && passive
                        .as_ref()
                        .is_ok_and(|&(log, copied)| log == copied || log == last_log);
                last_log = log;
                if quiet {
                    poked.quiet.send_replace(true);
                }
                let passive = passive.map(|p| p.0);
                match passive {
                    Ok(frames) if frames > WAL_RESTART_FRAMES => {
                        let restart = engine.scan_wait(|c| {
                            Ok(c.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                                r.get::<_, i64>(0)
                            })?)
                        });
                        if let Err(e) = restart {
                            tracing::debug!(error = %e, "restart checkpoint failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "checkpoint failed"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the checkpoint thread; the WAL will grow");
    }
}
