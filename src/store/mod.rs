//! The one SQLite database (`<stateDir>/switchboard.db`): sessions and their turns, tasks, the
//! inbox and the outbox.
//!
//! This module owns the schema (`migrations`); the rest of the program goes through the typed
//! methods in the submodules. The database runs in WAL mode with `synchronous = NORMAL`: a
//! committed transaction survives a crash of the process (what "never lost" promises are about);
//! only an OS crash or power cut can lose the last moments.
//!
//! Every method is async: the connections live on threads of their own (`engine`), so a runtime
//! worker never blocks on the database. Writes queued at the same moment are committed together,
//! each caller answered after the commit that holds its write; reads go to a second connection.

mod access;
mod approvals;
mod cron;
mod engine;
mod heartbeat;
mod inbox;
mod maintenance;
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

use engine::Engine;
use maintenance::{Poke, spawn_maintenance};
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
    #[error("cannot start the database thread: {0}")]
    Thread(String),
    #[error("the database thread stopped")]
    Stopped,
    #[error("database commit failed: {0}")]
    Commit(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle to the database; clones share its connections.
#[derive(Clone)]
pub struct Store {
    engine: Arc<Engine>,
    signals: Arc<Signals>,
}

/// Wake-ups for the tasks that would otherwise poll the database: an idle gateway should not
/// spend CPU asking whether anything changed.
struct Signals {
    /// Cron jobs or retries changed (the scheduler sleeps until the next slot otherwise).
    cron: tokio::sync::Notify,
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
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.set_prepared_statement_cache_capacity(64);
        // Reads are point lookups and short scans; the OS page cache holds the rest.
        reader.pragma_update(None, "cache_size", -2_000)?;
        let written = Arc::new(Poke::default());
        let engine = Arc::new(Engine::start(conn, reader, written.clone())?);
        spawn_maintenance(path, Arc::downgrade(&engine), written);
        Ok(Store {
            engine,
            signals: Arc::new(Signals {
                cron: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Runs `f` on the writer's thread, in a transaction it may share with other writes queued at
    /// the same moment (inside a savepoint of its own, so its failure undoes only its part);
    /// returns once that transaction is committed. IMMEDIATE transactions: the write lock is
    /// taken up front (waiting in the busy handler if the checkpointer holds it), rather than
    /// failing with SQLITE_BUSY_SNAPSHOT when a read turns into a write.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.engine.write(f).await
    }

    /// Queues the write `f` without waiting for its commit (a failure is logged as `what`): for
    /// records nobody waits on, such as usage. Writes awaited after it commit with it or later.
    pub(crate) fn write_queued<F>(&self, what: &'static str, f: F) -> Result<()>
    where
        F: FnOnce(&Connection) -> Result<()> + Send + 'static,
    {
        self.engine.write_queued(what, f)
    }

    /// Runs the point lookup `f` on the reader's connection: it sees every write whose call has
    /// returned. Keep `f` to a few indexed statements; anything longer is a [`Store::scan`].
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.engine.read(f).await
    }

    /// Runs the read `f`, which may take a while (a search, a report, a backup), on the reader's
    /// thread.
    pub(crate) async fn scan<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.engine.scan(f).await
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

    /// Hands back the page caches' memory (SQLite's `shrink_memory` on both connections): once
    /// start-up's reads are done, an idle gateway does not need them warm.
    pub async fn shrink_memory(&self) {
        let shrink = |c: &Connection| Ok(c.execute_batch("PRAGMA shrink_memory")?);
        let _ = self.write(shrink).await;
        let _ = self.scan(shrink).await;
    }

    /// (writes, transactions that committed them) since the store was opened: how much group
    /// commit is grouping, for benchmarks and diagnostics.
    pub fn write_counts(&self) -> (u64, u64) {
        self.engine.counts()
    }

    /// Writes a consistent copy of the whole database to `dest` (SQLite's `VACUUM INTO`: safe while
    /// a gateway is writing, and compact).
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_string_lossy().into_owned();
        self.scan(move |c| {
            c.execute("VACUUM INTO ?1", [dest])?;
            Ok(())
        })
        .await
    }

    /// The schema version of this database (how many migrations it has had).
    pub async fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .await
    }

    /// Counts for `gateway status`.
    pub async fn counts(&self) -> Result<Counts> {
        self.scan(|c| {
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
        .await
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
