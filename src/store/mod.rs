//! The one SQLite database (`<stateDir>/switchboard.db`): sessions and their turns, tasks, the
//! inbox and the outbox.
//!
//! This module owns the schema (`migrations`); the rest of the program goes through the typed
//! methods in the submodules. The database runs in WAL mode with `synchronous = NORMAL`: a
//! committed transaction survives a crash of the process (what "never lost" promises are about);
//! only an OS crash or power cut can lose the last moments. Statements are short, so one
//! connection behind a mutex serves the whole gateway without blocking the runtime noticeably.

mod access;
mod approvals;
mod cron;
mod heartbeat;
mod inbox;
mod memory;
mod migrations;
mod notices;
mod outbox;
mod previews;
mod references;
mod sessions;
mod tasks;
mod usage;

pub use access::{AllowedSender, PairingOutcome, PairingRequest};
pub use approvals::{ApprovalId, ApprovalRow, ApprovalStatus, NewApproval};
pub use cron::{CronHealth, CronJob, CronRun, CronRunLine, JobId, NewJob};
pub use heartbeat::HeartbeatRun;
pub use inbox::{InboxId, InboxRow};
pub use memory::MemoryHit;
pub use outbox::{NewOutbox, OutboxFile, OutboxId, OutboxRow, OutboxStatus, VoiceMeta};
pub use references::{ChatPref, OpenSession};
pub use sessions::{NewTurn, SessionId, SessionKind, SessionRow, TurnRow, main_key};
pub use tasks::{TaskId, TaskRow, TaskStatus};
pub use usage::{NewUsage, UsageBy, UsageLine};

use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle to the database; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    signals: Arc<Signals>,
}

/// Wake-ups for the tasks that would otherwise poll the database: an idle gateway should not
/// spend CPU asking whether anything changed.
struct Signals {
    /// Cron jobs or retries changed (the scheduler sleeps until the next slot otherwise).
    cron: tokio::sync::Notify,
    /// Something was written: the maintenance thread has indexing or a checkpoint to do.
    maintenance: Arc<Poke>,
}

/// A flag with a condition variable: `poke` sets it (waking the waiter only when it was clear,
/// so a busy writer pays one atomic check, not a syscall, per write).
#[derive(Default)]
struct Poke {
    set: std::sync::atomic::AtomicBool,
    lock: std::sync::Mutex<()>,
    cond: std::sync::Condvar,
}

impl Poke {
    fn poke(&self) {
        use std::sync::atomic::Ordering;
        if !self.set.swap(true, Ordering::AcqRel) {
            let _guard = self.lock.lock();
            self.cond.notify_one();
        }
    }

    /// Waits until poked or `timeout` passes; clears the flag. True if poked.
    fn wait(&self, timeout: std::time::Duration) -> bool {
        use std::sync::atomic::Ordering;
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let (_guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |_| !self.set.load(Ordering::Acquire))
            .unwrap_or_else(|e| e.into_inner());
        self.set.swap(false, Ordering::AcqRel)
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "cache_size", -4_000)?; // 4 MiB of page cache at most
        // Checkpoints copy the WAL into the database and fsync; done inline they put a multi-
        // millisecond stall on whichever message happens to commit the 1000th page. A background
        // thread with its own connection does them instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the log starts over, a file larger than this is cut back to it.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        migrations::migrations().to_latest(&mut conn)?;
        let maintenance = Arc::new(Poke::default());
        spawn_maintenance(path, maintenance.clone());
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            signals: Arc::new(Signals {
                cron: tokio::sync::Notify::new(),
                maintenance,
            }),
        })
    }

    /// Runs `f` with the connection. Keep `f` short: it holds the only connection.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock();
        let changes = conn.total_changes();
        let out = f(&mut conn);
        let wrote = conn.total_changes() != changes;
        drop(conn);
        if wrote {
            self.signals.maintenance.poke();
        }
        out
    }

    /// Resolves when cron jobs or retries may have changed since the last call returned: the
    /// scheduler waits on it instead of polling. `cron_changed` tells it about changes made
    /// by another process (the CLI).
    pub async fn cron_changes(&self) {
        self.signals.cron.notified().await
    }

    /// Tells the scheduler to look at the cron tables again.
    pub fn cron_changed(&self) {
        self.signals.cron.notify_one();
    }

    /// Runs `f` inside one transaction, committed only if `f` succeeds.
    pub(crate) fn tx<T>(&self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
        self.with(|conn| {
            // IMMEDIATE: take the write lock up front (waiting in the busy handler if the
            // checkpointer holds it), rather than fail with SQLITE_BUSY_SNAPSHOT when a read
            // turns into a write after the log started over.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Writes a consistent copy of the whole database to `dest` (SQLite's `VACUUM INTO`: safe while
    /// a gateway is writing, and compact).
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_string_lossy().into_owned();
        self.with(|c| {
            c.execute("VACUUM INTO ?1", [dest])?;
            Ok(())
        })
    }

    /// The schema version of this database (how many migrations it has had).
    pub fn schema_version(&self) -> Result<i64> {
        self.with(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    /// Counts for `gateway status`.
    pub fn counts(&self) -> Result<Counts> {
        self.with(|c| {
            let one = |sql: &str| c.one(sql, [], |r| r.get::<_, i64>(0));
            Ok(Counts {
                sessions: one("SELECT count(*) FROM sessions WHERE ended_at IS NULL")?,
                inbox_pending: one("SELECT count(*) FROM inbox WHERE status = 'pending'")?,
                outbox_pending: one("SELECT count(*) FROM outbox WHERE status = 'pending'")?,
                tasks_active: one(
                    "SELECT count(*) FROM tasks WHERE status IN ('queued', 'running')",
                )?,
            })
        })
    }
}

/// WAL frames (4 KiB pages) past which the checkpointer makes the log start over.
const WAL_RESTART_FRAMES: i64 = 4_096;

/// The maintenance thread, with its own connection: every half second while the gateway writes it
/// indexes new conversation turns for search (see `memory`), then checkpoints the WAL. Once a
/// round finds nothing to do it sleeps until the next write (or a minute, for writes by another
/// process), so an idle gateway does not wake it. PASSIVE never
/// blocks writers, but under a steady stream of commits it never catches up with the newest
/// frame, and SQLite only starts the log over once everything is copied back: the WAL grew to
/// 2 GB in a 20,000-message burst. So when the log passes [`WAL_RESTART_FRAMES`], a RESTART
/// checkpoint briefly holds writers back until the log can start over (and `journal_size_limit`
/// trims the file). The thread ends when the database file goes away (a test's temp dir).
fn spawn_maintenance(path: &Path, poked: Arc<Poke>) {
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("db-maintenance".into())
        .spawn(move || {
            let Ok(mut conn) = Connection::open(&path) else {
                return;
            };
            let _ = conn.busy_timeout(std::time::Duration::from_secs(2));
            // It only appends to the index and copies pages back: a small page cache will do.
            let _ = conn.pragma_update(None, "cache_size", -512);
            let busy_pause = std::time::Duration::from_millis(500);
            let mut quiet = false;
            let mut last_log = -1;
            loop {
                if quiet {
                    poked.wait(std::time::Duration::from_secs(60));
                }
                if Arc::strong_count(&poked) == 1 {
                    return; // the store is gone
                }
                // Let a burst of writes gather into one round.
                std::thread::sleep(busy_pause);
                if !path.exists() {
                    return;
                }
                // Index conversation turns for search, a batch at a time.
                let mut indexed = 0;
                loop {
                    match memory::index_new_turns(&mut conn, memory::TURN_BATCH) {
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
                let passive =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                quiet = indexed == 0 && passive.as_ref().ok() == Some(&last_log);
                last_log = *passive.as_ref().unwrap_or(&-1);
                match passive {
                    Ok(frames) if frames > WAL_RESTART_FRAMES => {
                        if let Err(e) = conn
                            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
                        {
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

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub sessions: i64,
    pub inbox_pending: i64,
    pub outbox_pending: i64,
    pub tasks_active: i64,
}

/// Milliseconds since the Unix epoch: how every time is stored.
/// Checks a database file without changing it (a backup about to be restored): SQLite's
/// `integrity_check` must say `ok`, and its schema must be one this binary can open (not from a
/// newer version). Returns the schema version.
pub fn verify_file(path: &Path) -> Result<i64> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let found: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    if found != ["ok"] {
        return Err(StoreError::Corrupt(format!(
            "integrity check of {}: {}",
            path.display(),
            found.join("; ")
        )));
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let ours = migrations::latest_version();
    if version > ours {
        return Err(StoreError::Corrupt(format!(
            "{} has schema version {version}, newer than this binary's {ours}: restore it with the switchboard that wrote it",
            path.display()
        )));
    }
    Ok(version)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Statement helpers that go through the connection's prepared-statement cache: parsing SQL was
/// the largest single cost on the message path before they were used.
pub(crate) trait Cached {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn one<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn one<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}
