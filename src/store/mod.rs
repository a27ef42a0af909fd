//! All state: sessions and their turns, tasks, the inbox and the outbox, cron, approvals,
//! usage, the memory search index. In one SQLite file (`<stateDir>/switchboard.db`) by default,
//! or in PostgreSQL when `store.url` says so.
//!
//! The rest of the program goes through the typed methods in the submodules here, one unit of
//! work each; no SQL lives outside this folder. Both backends run those same methods (through
//! [`sql::Db`]); each owns its schema, migrations and connections (`sqlite/`, `postgres/`).
//!
//! Every method is async, and a runtime worker never blocks on the database: the connections
//! live on threads of their own. On SQLite, writes queued at the same moment commit together
//! (each caller answered after the commit that holds its write) and reads use a second
//! connection; on PostgreSQL a small pool of connections runs each write in its own transaction.

mod access;
mod approvals;
mod cluster;
mod cron;
mod heartbeat;
mod inbox;
mod memory;
mod notices;
mod outbox;
mod postgres;
mod previews;
mod references;
mod sessions;
pub(crate) mod sql;
mod sqlite;
mod tasks;
mod usage;

pub use access::{AllowedSender, PairingOutcome, PairingRequest};
pub use approvals::{ApprovalId, ApprovalRow, ApprovalStatus, NewApproval};
pub use cluster::{Adopted, InstanceRow};
pub use cron::{CronHealth, CronJob, CronRun, CronRunLine, JobId, NewJob};
pub use heartbeat::HeartbeatRun;
pub use inbox::{InboxId, InboxRow};
pub use memory::MemoryHit;
pub use outbox::{NewOutbox, OutboxFile, OutboxId, OutboxRow, OutboxStatus, VoiceMeta};
pub use references::{ChatPref, OpenSession};
pub use sessions::{NewTurn, SessionId, SessionKind, SessionRow, TurnRow, main_key};
pub use sqlite::verify_file;
pub use tasks::{TaskId, TaskRow, TaskStatus};
pub use usage::{AgentCost, NewUsage, UsageBy, UsageLine};

use sql::{Db, p};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
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
    #[error("{0}")]
    Config(String),
    #[error("{0} is not possible with a PostgreSQL store")]
    Unsupported(&'static str),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle to the database; clones share its connections.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    signals: Arc<Signals>,
    /// Which gateway this is, among several on one database (`cluster`): what it stores to
    /// deliver or run is marked as its own.
    instance: Arc<str>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<sqlite::Engine>),
    Postgres(Arc<postgres::Pool>),
}

/// Wake-ups for the tasks that would otherwise poll the database: an idle gateway should not
/// spend CPU asking whether anything changed.
#[derive(Default)]
pub(in crate::store) struct Signals {
    /// Cron jobs or retries changed (the scheduler sleeps until the next slot otherwise).
    cron: tokio::sync::Notify,
    /// Messages were stored by another gateway (PostgreSQL: told by `NOTIFY`), in these chats.
    inbox: tokio::sync::Notify,
    inbox_chats: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// This gateway's instance id, so that its own notices are not news to it.
    me: parking_lot::RwLock<Arc<str>>,
}

impl Store {
    /// Opens (creating it if needed) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        Ok(Store::with(
            Backend::Sqlite(sqlite::open(path)?),
            Arc::default(),
        ))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:pass@host/db`), bringing
    /// its schema up to date.
    pub fn connect(url: &str) -> Result<Store> {
        let signals = Arc::new(Signals::default());
        let pool = postgres::Pool::connect(url, &signals)?;
        Ok(Store::with(Backend::Postgres(pool), signals))
    }

    /// The store `store.url` names: `"sqlite"` (the file in the state dir) or a PostgreSQL URL.
    pub fn for_config(c: &crate::config::Config) -> Result<Store> {
        match c.store.url.trim() {
            "" | "sqlite" => Store::open(&c.db_path()),
            url if Store::shared_by_config(c) => Store::connect(url),
            _ => Err(StoreError::Config(
                "store.url must be \"sqlite\" or a postgres:// URL".into(),
            )),
        }
    }

    /// Whether the store `c` names may be shared by several gateways (PostgreSQL), known
    /// before it is opened: start-up decides by it whether this gateway polls Telegram at once.
    pub fn shared_by_config(c: &crate::config::Config) -> bool {
        let url = c.store.url.trim();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    fn with(backend: Backend, signals: Arc<Signals>) -> Store {
        Store {
            backend,
            signals,
            instance: Arc::from("local"),
        }
    }

    /// Whether several gateways may share this store (PostgreSQL): then they lease chats and
    /// roles (`crate::cluster`). SQLite is one gateway's own.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Resolves when another gateway stored messages (on a shared store; never on SQLite).
    pub async fn inbox_changes(&self) {
        self.signals.inbox.notified().await
    }

    /// The chats other gateways stored messages for since the last call.
    pub fn inbox_changed_chats(&self) -> Vec<String> {
        self.signals.inbox_chats.lock().drain().collect()
    }

    /// This store as gateway instance `id` sees it (set once, at start-up, before it is shared).
    pub fn with_instance(mut self, id: &str) -> Store {
        self.instance = Arc::from(id);
        *self.signals.me.write() = self.instance.clone();
        self
    }

    /// The gateway instance this store belongs to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs the write `f` and returns once it is committed. On SQLite it runs on this thread in
    /// a transaction of its own when the writer is free, else on the writer's thread, in a
    /// transaction it may share with other writes queued at the same moment (inside a savepoint
    /// of its own, so its failure undoes only its part); on PostgreSQL, in a transaction of its
    /// own on a pooled connection. Keep `f` to a few statements: longer is [`Store::write_long`].
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.write_in(false, f).await
    }

    /// [`Store::write`] for a write that may take a while (indexing a batch of turns or a memory
    /// file, an import): on SQLite it always runs on the writer's thread, never on the caller's
    /// (a quick write may run on the caller's own thread, a runtime worker, when the writer is
    /// free). The same as `write` on PostgreSQL.
    pub(crate) async fn write_long<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.write_in(true, f).await
    }

    /// [`Store::write`], or [`Store::write_long`] when `long`.
    async fn write_in<T, F>(&self, long: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(e) => {
                let me = self.instance.clone();
                let f = move |c: &rusqlite::Connection| f(&Db::sqlite(c, &me));
                match long {
                    true => e.write_long(f).await,
                    false => e.write(f).await,
                }
            }
            Backend::Postgres(p) => p.write(self.instance.clone(), f).await,
        }
    }

    /// Queues the write `f` without waiting for its commit (a failure is logged as `what`): for
    /// records nobody waits on, such as usage. Writes awaited after it commit with it or later.
    /// On SQLite it starts no transaction of its own: it rides in the next write's (or commits
    /// alone within a second). Keep `f` to one statement: on PostgreSQL it runs outside a
    /// transaction.
    pub(crate) fn write_queued<F>(&self, what: &'static str, f: F) -> Result<()>
    where
        F: FnOnce(&Db) -> Result<()> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(e) => {
                let me = self.instance.clone();
                e.write_queued(what, move |c| f(&Db::sqlite(c, &me)))
            }
            Backend::Postgres(p) => p.write_queued(what, self.instance.clone(), f),
        }
    }

    /// Commits whatever was queued without a wait ([`Store::write_queued`]): at shutdown.
    pub async fn flush(&self) -> Result<()> {
        self.write(|_| Ok(())).await
    }

    /// Runs the point lookup `f`: it sees every write whose call has returned. Keep `f` to a few
    /// indexed statements; anything longer is a [`Store::scan`].
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(e) => {
                let me = self.instance.clone();
                e.read(move |c| f(&Db::sqlite(c, &me))).await
            }
            Backend::Postgres(p) => p.read(self.instance.clone(), f).await,
        }
    }

    /// Runs the read `f`, which may take a while (a search, a report, a backup).
    pub(crate) async fn scan<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(e) => {
                let me = self.instance.clone();
                e.scan(move |c| f(&Db::sqlite(c, &me))).await
            }
            Backend::Postgres(p) => p.read(self.instance.clone(), f).await,
        }
    }

    /// Resolves when cron jobs or retries may have changed since the last call returned: the
    /// scheduler waits on it instead of polling. `cron_changed` tells it about changes made
    /// by another process (the CLI).
    pub async fn cron_changes(&self) {
        self.signals.cron.notified().await
    }

    /// Tells the scheduler to look at the cron tables again: this gateway's, and on a shared
    /// store every gateway's (the one running the scheduler may be another).
    pub fn cron_changed(&self) {
        self.signals.cron.notify_one();
        if self.is_shared() {
            let _ = self.write_queued("a cron change notice", |c| {
                c.run("SELECT pg_notify('switchboard', 'cron ' || ?1)", p![c.me()])?;
                Ok(())
            });
        }
    }

    /// Compiles the statements every message runs, on the connection that runs each, so the
    /// first message after start-up does not: SQLite's parser and code generator (and the code
    /// pages behind them, which the start-up page drop then hands back) stay out of its path.
    /// On PostgreSQL a statement is prepared by the connection that first runs it; nothing to do.
    pub async fn prepare_message_path(&self) -> Result<()> {
        /// The reads of a message (the reader's connection)...
        const READS: &[&str] = &[
            sessions::CHAT_CHOICES,
            sessions::LIVE,
            sessions::SUMMARY,
            sessions::CONTEXT_TURNS,
        ];
        /// ...and its writes (the writer's), in the order a message makes them.
        const WRITES: &[&str] = &[
            inbox::INSERT,
            sessions::LIVE,
            sessions::OPEN,
            usage::INSERT,
            inbox::FINISH,
            sessions::INSERT_TURN,
            sessions::SET_CONTEXT,
            previews::OF_REPLY,
            outbox::INSERT,
            outbox::PROGRESS,
        ];
        fn prepare(c: &rusqlite::Connection, all: &[&str]) -> Result<()> {
            for sql in all {
                // Back into the connection's statement cache when dropped, compiled.
                c.prepare_cached(sql)?;
            }
            Ok(())
        }
        if let Backend::Sqlite(e) = &self.backend {
            let (reads, writes) = tokio::join!(
                e.scan(|c| prepare(c, READS)),
                e.write(|c| prepare(c, WRITES))
            );
            reads.and(writes)?;
        }
        Ok(())
    }

    /// Hands back the reader's page cache (SQLite's `shrink_memory`) once start-up's reads are
    /// done: every commit of the writer makes the reader read its pages again anyway. The
    /// writer's cache stays: only the writer changes the database, so its pages stay valid,
    /// and the first message after a long quiet finds them in memory instead of on a disk
    /// from which the host may have evicted them (a read of 2 ms or more each on a VM).
    pub async fn shrink_memory(&self) {
        if let Backend::Sqlite(e) = &self.backend {
            let shrink = |c: &rusqlite::Connection| Ok(c.execute_batch("PRAGMA shrink_memory")?);
            let _ = e.scan(shrink).await;
        }
    }

    /// Resolves once the store's background upkeep (SQLite's indexing of new turns and WAL
    /// checkpoints) has caught up with start-up's writes, or after `at_most`; at once on
    /// PostgreSQL, whose upkeep is the server's.
    pub async fn caught_up(&self, at_most: std::time::Duration) {
        if let Backend::Sqlite(e) = &self.backend {
            let _ = tokio::time::timeout(at_most, e.caught_up()).await;
        }
    }

    /// (writes, transactions that committed them) since the store was opened: how much group
    /// commit is grouping, for benchmarks and diagnostics.
    pub fn write_counts(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Sqlite(e) => e.counts(),
            Backend::Postgres(p) => p.counts(),
        }
    }

    /// See `Engine::end_load` (SQLite only).
    #[cfg(test)]
    pub(crate) fn end_load_for_test(&self) {
        if let Backend::Sqlite(e) = &self.backend {
            e.end_load();
        }
    }

    /// Statements this process has sent to PostgreSQL (0 on SQLite), for benchmarks.
    pub fn round_trips() -> u64 {
        sql::ROUND_TRIPS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes a consistent copy of the whole database to `dest` (SQLite's `VACUUM INTO`: safe while
    /// a gateway is writing, and compact). A PostgreSQL store is backed up with its own tools.
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let Backend::Sqlite(e) = &self.backend else {
            return Err(StoreError::Unsupported("a database copy (use pg_dump)"));
        };
        let dest = dest.to_string_lossy().into_owned();
        e.scan(move |c| {
            c.execute("VACUUM INTO ?1", [dest])?;
            Ok(())
        })
        .await
    }

    /// The schema version of this database (how many migrations it has had).
    pub async fn schema_version(&self) -> Result<i64> {
        match &self.backend {
            Backend::Sqlite(e) => {
                e.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
                    .await
            }
            Backend::Postgres(p) => {
                p.read(self.instance.clone(), postgres::schema_version)
                    .await
            }
        }
    }

    /// Counts for `gateway status`.
    pub async fn counts(&self) -> Result<Counts> {
        self.scan(|c| {
            let one = |sql: &str| c.value::<i64>(sql, &[]);
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
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
