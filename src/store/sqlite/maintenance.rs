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
/// round finds nothing to do it sleeps until the next write, so an idle gateway does not wake
/// it; once a minute it asks SQLite (`data_version`, no I/O) whether another process wrote.
///
/// PASSIVE never blocks writers, but under a steady stream of commits it never catches up with
/// the newest frame, and SQLite only starts the log over once everything is copied back: the
/// WAL grew to 2 GB in a 20,000-message burst. So when the log passes [`WAL_RESTART_FRAMES`], a
/// RESTART checkpoint briefly holds writers back until the log can start over (and
/// `journal_size_limit` trims the file).
///
/// Once everything is copied back, the thread starts the log over itself (see [`restart_log`]),
/// so the first message after a pause does not pay for it. The thread ends with the store, or
/// when the database file goes away (a test's temp dir).
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
            // The reader's `data_version` when the thread last went quiet: a commit by any other
            // connection (ours or another process's) changes it.
            let mut quiet_version = None;
            loop {
                if quiet && !poked.wait(std::time::Duration::from_secs(60)) {
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    if quiet_version.is_some() && data_version(&engine) == quiet_version {
                        continue; // nobody wrote: nothing to index or copy back
                    }
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
                let all_copied = passive.as_ref().is_ok_and(|&(log, copied)| log == copied);
                // Nothing more to do: every frame is copied back, or none moved since the last
                // round (a reader holds them; the next write pokes us again).
                quiet = indexed == 0 && (all_copied || log == last_log);
                last_log = log;
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
                if quiet {
                    // After the RESTART above, if there was one: its wait for readers is what
                    // lets the log start over.
                    if all_copied {
                        restart_log(&engine);
                    }
                    quiet_version = data_version(&engine);
                    poked.quiet.send_replace(true);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the checkpoint thread; the WAL will grow");
    }
}

/// Starts the WAL over now, with a write that changes nothing (it rewrites page 1's
/// `application_id` with its own value), instead of in the next message's commit.
///
/// Why: once a checkpoint has copied every frame back, the next write transaction starts the
/// log over, and SQLite syncs the new log's header before the first frame, even at
/// `synchronous = NORMAL` (so a reordered write cannot corrupt the database after a power cut).
/// That fsync (~2 ms on a VM's disk) would land on the first message after every pause. Here
/// it is paid by this thread instead; the frame it leaves is copied back after the next real
/// writes. It changes no row, so the writer does not poke this thread again for it.
fn restart_log(engine: &Engine) {
    let rewritten = engine.write_wait(|c| {
        let id: i64 = c.pragma_query_value(None, "application_id", |r| r.get(0))?;
        c.pragma_update(None, "application_id", id)?;
        Ok(())
    });
    if let Err(e) = rewritten {
        tracing::debug!(error = %e, "cannot start the WAL over ahead of the next write");
    }
}

/// The reader connection's `PRAGMA data_version` (a counter SQLite changes when another
/// connection commits), or `None` when it cannot be read.
fn data_version(engine: &Engine) -> Option<i64> {
    engine
        .scan_wait(|c| Ok(c.pragma_query_value(None, "data_version", |r| r.get::<_, i64>(0))?))
        .ok()
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::sql::p;
    use std::time::{Duration, Instant};

    /// The WAL header's salts: SQLite writes new ones (and syncs them) whenever it starts the
    /// log over.
    fn wal_salts(db: &std::path::Path) -> Vec<u8> {
        let wal = std::fs::read(db.with_extension("db-wal")).unwrap_or_default();
        wal.get(16..24).map(<[u8]>::to_vec).unwrap_or_default()
    }

    async fn insert(store: &Store, x: i64) {
        store
            .write(move |c| c.run("INSERT INTO t (x) VALUES (?1)", p![x]).map(drop))
            .await
            .unwrap();
    }

    /// The first write after a pause must not start the WAL over (and fsync its header): the
    /// maintenance thread has done that already, and then it stays asleep.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_started_over_before_the_next_write_needs_it_and_the_thread_then_sleeps() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = Store::open(&db).unwrap();
        store
            .write(|c| c.batch("CREATE TABLE t (x INTEGER)"))
            .await
            .unwrap();
        store.caught_up(Duration::from_secs(30)).await;
        for round in 0..2 {
            // Wait for the round after the last writes: everything copied back, then the log
            // started over (new salts).
            let before = wal_salts(&db);
            insert(&store, round).await;
            assert_eq!(
                wal_salts(&db),
                before,
                "round {round}: the write started the log over itself"
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while wal_salts(&db) == before {
                assert!(Instant::now() < deadline, "the log was never started over");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Settled: the maintenance thread does not keep writing on its own.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let counts = store.write_counts();
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            assert_eq!(
                store.write_counts(),
                counts,
                "round {round}: it kept writing"
            );
        }
        let rows: Vec<i64> = store
            .read(|c| c.all("SELECT x FROM t ORDER BY x", p![], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(rows, [0, 1]);
    }
}
