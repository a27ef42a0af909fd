//! The PostgreSQL backend (`store.url: "postgres://…"`): a small pool of connections, each on a
//! thread of its own, running the same store methods as SQLite through [`Db`].
//!
//! Why the synchronous `postgres` client on threads and not `tokio-postgres` on the runtime: the
//! store's methods are closures that run statements one after another inside a transaction, on
//! SQLite and here alike; a connection that owns a thread runs them as they are, and the
//! runtime's workers still never wait on the database (callers await a oneshot). Each write is a
//! transaction of its own (PostgreSQL commits concurrent transactions together itself); reads
//! run outside any. A connection that breaks is opened again for the next call. TLS (sslmode
//! `prefer`, `require`) goes through rustls with the web's root certificates.

mod migrations;
mod types;

pub(crate) use types::{Bind, Owned};

use super::sql::{Db, PgConn};
use super::{Result, Signals, StoreError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// Connections in the pool: enough for a gateway's concurrent chats to write while others read,
/// few enough that several gateways fit a server's default 100 connections.
const CONNECTIONS: usize = 4;

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

pub(in crate::store) struct Pool {
    jobs: Sender<Job>,
    writes: Arc<AtomicU64>,
    queued: Arc<Queued>,
}

/// Writes queued without a wait ([`Pool::write_queued`]) that have not committed yet. SQLite's
/// single writer commits in order, so a write awaited after a queued one commits with it or
/// later; on a pool of connections that order is kept by making a write wait for the queued
/// writes before it (a usage row is a few hundred microseconds; the caller waited for nothing
/// else).
#[derive(Default)]
struct Queued {
    tickets: parking_lot::Mutex<(u64, std::collections::BTreeSet<u64>)>,
    done: tokio::sync::Notify,
}

impl Queued {
    fn take(&self) -> u64 {
        let mut t = self.tickets.lock();
        t.0 += 1;
        let ticket = t.0;
        t.1.insert(ticket);
        ticket
    }

    fn finish(&self, ticket: u64) {
        self.tickets.lock().1.remove(&ticket);
        self.done.notify_waiters();
    }

    /// Waits until every write queued before now has committed (or failed).
    async fn settle(&self) {
        let upto = {
            let t = self.tickets.lock();
            match t.1.first() {
                None => return,
                Some(_) => t.0,
            }
        };
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self
                .tickets
                .lock()
                .1
                .first()
                .is_none_or(|first| *first > upto)
            {
                return;
            }
            notified.await;
        }
    }
}

/// One pooled connection's thread state: opened on first use and again after it breaks.
struct Worker {
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    conn: Option<PgConn>,
}

impl Worker {
    fn conn(&mut self) -> Result<&PgConn> {
        if let Some(c) = &self.conn
            && c.client.borrow().is_closed()
        {
            tracing::warn!("the PostgreSQL connection closed; opening it again");
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(c) => c,
            None => PgConn::new(self.config.connect(self.tls.clone())?),
        };
        Ok(self.conn.insert(conn))
    }

    /// Runs `f` in a transaction of its own: committed if it succeeds, rolled back if it fails
    /// or panics.
    fn transaction<T>(&mut self, me: &str, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        super::sql::ROUND_TRIPS.fetch_add(2, Ordering::Relaxed); // BEGIN, COMMIT
        conn.client.borrow_mut().batch_execute("BEGIN")?;
        let out = catch_unwind(AssertUnwindSafe(|| f(&Db::postgres(conn, me))))
            .unwrap_or(Err(StoreError::Stopped));
        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match (out, conn.client.borrow_mut().batch_execute(end)) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(StoreError::Commit(e.to_string())),
            (Err(e), _) => Err(e),
        }
    }

    /// Runs `f` outside any transaction: each statement commits on its own (reads, and writes
    /// of a single statement).
    fn autocommit<T>(&mut self, me: &str, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        catch_unwind(AssertUnwindSafe(|| f(&Db::postgres(conn, me))))
            .unwrap_or(Err(StoreError::Stopped))
    }
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Config(format!("TLS for PostgreSQL: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Pool {
    /// Connects to `url`, brings the schema up to date and starts the pool. Fails with a clear
    /// error (never showing the password) when the server cannot be reached or refuses.
    pub(in crate::store) fn connect(url: &str, signals: &Arc<Signals>) -> Result<Arc<Pool>> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("store.url is not a PostgreSQL URL: {e}")))?;
        let tls = tls()?;
        let (jobs, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..CONNECTIONS {
            let worker = Worker {
                config: config.clone(),
                tls: tls.clone(),
                conn: None,
            };
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("db-pg-{i}"))
                .stack_size(1024 * 1024)
                .spawn(move || work(worker, rx))
                .map_err(|e| StoreError::Thread(e.to_string()))?;
        }
        let pool = Arc::new(Pool {
            jobs,
            writes: Arc::new(AtomicU64::new(0)),
            queued: Arc::default(),
        });
        // The first connection migrates, before anyone uses the store.
        let (done, wait) = channel();
        pool.submit(Box::new(move |w: &mut Worker| {
            let _ = done.send(w.conn().and_then(migrate));
        }))?;
        wait.recv().map_err(|_| StoreError::Stopped)??;
        let weak = Arc::downgrade(signals);
        std::thread::Builder::new()
            .name("db-pg-listen".into())
            .stack_size(512 * 1024)
            .spawn(move || listen(config, tls, weak))
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(pool)
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| StoreError::Stopped)
    }

    pub(in crate::store) async fn write<T, F>(&self, me: Arc<str>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        self.queued.settle().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let writes = self.writes.clone();
        self.submit(Box::new(move |w| {
            let out = w.transaction(&me, f);
            writes.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(out);
        }))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    pub(in crate::store) fn write_queued<F>(
        &self,
        what: &'static str,
        me: Arc<str>,
        f: F,
    ) -> Result<()>
    where
        F: FnOnce(&Db) -> Result<()> + Send + 'static,
    {
        let writes = self.writes.clone();
        let queued = self.queued.clone();
        let ticket = queued.take();
        let sent = self.submit(Box::new(move |w| {
            // One statement (a usage row, a notice): it commits on its own, without the two
            // round trips of BEGIN and COMMIT.
            if let Err(e) = w.autocommit(&me, f) {
                tracing::error!(error = %e, "cannot store {what}");
            }
            writes.fetch_add(1, Ordering::Relaxed);
            queued.finish(ticket);
        }));
        if sent.is_err() {
            self.queued.finish(ticket);
        }
        sent
    }

    pub(in crate::store) async fn read<T, F>(&self, me: Arc<str>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |w| {
            let _ = tx.send(w.autocommit(&me, f));
        }))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// (writes, transactions): one transaction per write here.
    pub(in crate::store) fn counts(&self) -> (u64, u64) {
        let n = self.writes.load(Ordering::Relaxed);
        (n, n)
    }
}

/// A pooled connection's thread: takes the next job from the shared queue until the store is
/// dropped.
fn work(mut worker: Worker, jobs: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv()
        };
        match job {
            Ok(job) => job(&mut worker),
            Err(_) => return,
        }
    }
}

/// Hears what other gateways tell this one (`NOTIFY switchboard`): messages stored for chats it
/// may hold (`inbox`), cron jobs changed (`cron`). On a connection of its own, opened again if
/// it breaks; ends once the store is gone (it looks every second).
fn listen(
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    signals: std::sync::Weak<Signals>,
) {
    use postgres::fallible_iterator::FallibleIterator;
    let pause = std::time::Duration::from_secs(1);
    while signals.strong_count() > 0 {
        let mut client = match config.connect(tls.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other gateways' notices");
                std::thread::sleep(pause);
                continue;
            }
        };
        if let Err(e) = client.batch_execute("LISTEN switchboard") {
            tracing::warn!(error = %e, "cannot listen for other gateways' notices");
            std::thread::sleep(pause);
            continue;
        }
        loop {
            let mut notes = client.notifications();
            match notes.timeout_iter(pause).next() {
                Ok(Some(note)) => {
                    let Some(s) = signals.upgrade() else { return };
                    let mut words = note.payload().splitn(3, ' ');
                    let (what, from) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    if from == &**s.me.read() {
                        continue; // our own
                    }
                    match what {
                        "inbox" => {
                            if let Some(chat) = words.next() {
                                s.inbox_chats.lock().insert(chat.to_string());
                            }
                            s.inbox.notify_one();
                        }
                        "cron" => s.cron.notify_one(),
                        _ => {}
                    }
                }
                Ok(None) if signals.strong_count() == 0 => return,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost the notices connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Brings the schema up to date, holding an advisory lock so that gateways starting together
/// migrate once; refuses a database migrated by a newer binary.
fn migrate(conn: &PgConn) -> Result<()> {
    let mut client = conn.client.borrow_mut();
    let mut tx = client.transaction()?;
    // Any fixed number: the lock is this program's, across every gateway on the database.
    tx.execute("SELECT pg_advisory_xact_lock(7405637279316946981)", &[])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS switchboard_migrations (
            version     BIGINT PRIMARY KEY,
            applied_at  BIGINT NOT NULL
        )",
    )?;
    let done: i64 = tx
        .query_one(
            "SELECT CAST(coalesce(max(version), 0) AS BIGINT) FROM switchboard_migrations",
            &[],
        )?
        .try_get(0)?;
    let ours = migrations::ALL.len() as i64;
    if done > ours {
        return Err(StoreError::Corrupt(format!(
            "the PostgreSQL database has schema version {done}, newer than this binary's {ours}: run the switchboard that migrated it"
        )));
    }
    for (i, sql) in migrations::ALL.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO switchboard_migrations (version, applied_at) VALUES ($1, $2)",
            &[&(i as i64 + 1), &super::now_ms()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// How many migrations the database has had.
pub(in crate::store) fn schema_version(db: &Db) -> Result<i64> {
    db.value(
        "SELECT CAST(coalesce(max(version), 0) AS BIGINT) FROM switchboard_migrations",
        &[],
    )
}
