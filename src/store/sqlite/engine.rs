//! The SQLite connections' own threads: callers await, and the runtime's workers never block on
//! the database.
//!
//! - **The writer** owns the connection that writes. Writes queued while it was busy are
//!   committed together, in one transaction (group commit): each runs inside a savepoint of it,
//!   so one that fails is rolled back alone, and each caller is answered only after the commit
//!   that holds its write. "Stored before acknowledged" is kept: an `accept` returns after the
//!   commit, never before. Under a burst this turns a commit (with its WAL append and its file
//!   locks) per write into one per batch.
//! - **The reader** is a second connection for reads, so a read never waits behind a batch of
//!   writes (WAL lets it see the last commit while the writer works). A point lookup runs on the
//!   caller's thread when the reader is free (a few microseconds of work, never a wait: a busy
//!   reader sends it to the reader's thread instead); a scan (`scan`) always goes to the thread.
//!   A message makes about six reads; a hop to another thread and back for each was half of the
//!   added latency of a message.
//!
//! - **Riders**: a write nobody waits for (a model call's usage row) does not start a
//!   transaction of its own; it rides in the next one any write starts, or commits alone after
//!   [`RIDE_MAX`]. A message's usage row used to cost it a commit of its own (file locks, WAL
//!   frames, a wake of the maintenance thread); now it commits with the answer it paid for.
//!
//! Why threads and not `spawn_blocking`: a connection is not `Sync`, its prepared-statement cache
//! is per connection, and a thread that keeps it warm costs one stack, not a pool.

use super::super::{Result, StoreError};
use super::maintenance::Poke;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

/// What a write's caller is told once its batch is committed (or not): `None` when the commit
/// succeeded, else why it failed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;
/// A write: runs on the writer's connection inside the open transaction; says whether it
/// succeeded (its savepoint is released, else rolled back) and how to answer its caller. Given
/// no connection (its transaction could not begin), it does not run and only makes the answer.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> (bool, Answer) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Writes committed together at most: bounds how long the first of a batch waits.
const MAX_BATCH: usize = 256;

/// How long a rider (see [`Engine::write_queued`]) waits for a transaction to ride in before it
/// commits alone.
const RIDE_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// What the writer's channel carries.
enum Msg {
    Write(WriteJob),
    /// A rider was queued while the writer slept with no deadline: it must start the clock.
    Wake,
}

/// Writes waiting for the writer's next transaction (see [`Engine::write_queued`]).
#[derive(Default)]
struct Riders {
    jobs: parking_lot::Mutex<Vec<WriteJob>>,
    /// Set while the writer waits for a job with no deadline.
    sleeping: std::sync::atomic::AtomicBool,
}

impl Riders {
    fn take(&self) -> Vec<WriteJob> {
        std::mem::take(&mut *self.jobs.lock())
    }

    fn pending(&self) -> bool {
        !self.jobs.lock().is_empty()
    }
}

pub(in crate::store) struct Engine {
    writes: Sender<Msg>,
    riders: Arc<Riders>,
    reads: Sender<ReadJob>,
    reader: Arc<parking_lot::Mutex<Connection>>,
    counts: Arc<WriteCounts>,
    /// Shared with the writer (which pokes it) and the maintenance thread.
    written: Arc<Poke>,
}

/// Writes and the transactions that committed them, since the store was opened.
#[derive(Default)]
pub(super) struct WriteCounts {
    pub(super) writes: AtomicU64,
    pub(super) commits: AtomicU64,
}

impl Engine {
    /// Starts the two threads on the two connections. `written` is poked after every commit
    /// that changed something (the maintenance thread has indexing or a checkpoint to do).
    pub(super) fn start(
        writer: Connection,
        reader: Connection,
        written: Arc<Poke>,
    ) -> Result<Self> {
        let (writes, write_rx) = channel::<Msg>();
        let riders = Arc::new(Riders::default());
        let waiting = riders.clone();
        let (reads, read_rx) = channel::<ReadJob>();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                // Statements recurse a little inside SQLite; nothing here needs the default 2 MiB.
                .stack_size(256 * 1024)
                .spawn(f)
                .map_err(|e| StoreError::Thread(e.to_string()))
        };
        let counts = Arc::new(WriteCounts::default());
        let tally = counts.clone();
        let poke = written.clone();
        spawn(
            "db-writer",
            Box::new(move || write_loop(writer, write_rx, waiting, poke, tally)),
        )?;
        let reader = Arc::new(parking_lot::Mutex::new(reader));
        let shared = reader.clone();
        spawn("db-reader", Box::new(move || read_loop(shared, read_rx)))?;
        Ok(Engine {
            writes,
            riders,
            reads,
            reader,
            counts,
            written,
        })
    }

    /// Resolves once the maintenance thread has caught up with the writes so far.
    pub(in crate::store) async fn caught_up(&self) {
        self.written.caught_up().await
    }

    /// (writes run, transactions committed) so far.
    pub(in crate::store) fn counts(&self) -> (u64, u64) {
        (
            self.counts.writes.load(Ordering::Relaxed),
            self.counts.commits.load(Ordering::Relaxed),
        )
    }

    /// Runs `f` in the writer's next transaction; returns once that transaction is committed.
    pub(in crate::store) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit_write(f, move |out| drop(tx.send(out)))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// [`Engine::write`] for a thread outside the runtime (the maintenance thread).
    pub(super) fn write_wait<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit_write(f, move |out| drop(tx.send(out)))?;
        rx.blocking_recv().map_err(|_| StoreError::Stopped)?
    }

    /// Queues `f` for the writer's next transaction without waiting for it, and without
    /// starting one: it rides in the next transaction another write starts, or commits alone
    /// within [`RIDE_MAX`]. A failure is logged as `what`. Writes queued after it commit in the
    /// same transaction or a later one, so whoever sees their effect sees this one's too.
    pub(in crate::store) fn write_queued<F>(&self, what: &'static str, f: F) -> Result<()>
    where
        F: FnOnce(&Connection) -> Result<()> + Send + 'static,
    {
        let job = write_job(f, move |out| {
            if let Err(e) = out {
                tracing::error!(error = %e, "cannot store {what}");
            }
        });
        let first = {
            let mut jobs = self.riders.jobs.lock();
            jobs.push(job);
            jobs.len() == 1
        };
        std::sync::atomic::fence(Ordering::SeqCst);
        // The writer checks for riders after it says it sleeps, so one of the two sees the other.
        if first && self.riders.sleeping.load(Ordering::SeqCst) {
            self.writes
                .send(Msg::Wake)
                .map_err(|_| StoreError::Stopped)?;
        }
        Ok(())
    }

    /// Queues the write `f`; `answer` gets its outcome once its transaction has ended: its own
    /// error, the commit's failure, or its value once committed.
    fn submit_write<T, F>(
        &self,
        f: F,
        answer: impl FnOnce(Result<T>) + Send + 'static,
    ) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writes
            .send(Msg::Write(write_job(f, answer)))
            .map_err(|_| StoreError::Stopped)
    }

    /// Runs the point lookup `f` on the reader's connection (outside any transaction: each
    /// statement sees the last commit): here and now if the reader is free, else on its thread.
    pub(in crate::store) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if let Some(conn) = self.reader.try_lock() {
            return f(&conn);
        }
        self.scan(f).await
    }

    /// Runs `f`, which may take a while (a search, a report, a backup), on the reader's thread.
    pub(in crate::store) async fn scan<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit_read(f)?
            .await
            .map_err(|_| StoreError::Stopped)?
    }

    /// [`Engine::scan`] for a thread outside the runtime (the maintenance thread).
    pub(super) fn scan_wait<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit_read(f)?
            .blocking_recv()
            .map_err(|_| StoreError::Stopped)?
    }

    fn submit_read<T, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        self.reads.send(job).map_err(|_| StoreError::Stopped)?;
        Ok(rx)
    }
}

/// The job that runs write `f` and gives `answer` its outcome once its transaction has ended.
fn write_job<T, F>(f: F, answer: impl FnOnce(Result<T>) + Send + 'static) -> WriteJob
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    Box::new(move |c| {
        let out = c.map(f);
        let ok = matches!(out, Some(Ok(_)));
        let after: Answer = Box::new(move |commit: Option<&str>| {
            answer(match (out, commit) {
                (None, why) => Err(StoreError::Commit(why.unwrap_or("not run").into())),
                (Some(Ok(_)), Some(why)) => Err(StoreError::Commit(why.to_string())),
                (Some(out), _) => out,
            })
        });
        (ok, after)
    })
}

/// How long a database thread keeps looking for the next job after finishing one, before it
/// sleeps. A message makes a dozen calls a few microseconds apart; waking a sleeping thread
/// (on a VM, often a halted CPU) costs tens of microseconds each time, which tripled the added
/// latency of a message before the threads waited a little first. An idle gateway does not spin:
/// this only follows work.
const LINGER: std::time::Duration = std::time::Duration::from_micros(200);

/// The next job: at once if one is queued, else looked for during [`LINGER`], else waited for.
/// `None` when every sender is gone.
fn next<T>(jobs: &Receiver<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) if start.elapsed() < LINGER => {
                std::thread::yield_now()
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}

fn read_loop(conn: Arc<parking_lot::Mutex<Connection>>, jobs: Receiver<ReadJob>) {
    while let Some(job) = next(&jobs) {
        let conn = conn.lock();
        // A panic drops the job's answer: its caller gets `Stopped`, the thread goes on.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&conn)));
    }
}

/// Runs one statement that takes no parameters, through the statement cache.
fn exec(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.prepare_cached(sql)?.execute([]).map(drop)
}

fn write_loop(
    conn: Connection,
    jobs: Receiver<Msg>,
    riders: Arc<Riders>,
    written: Arc<Poke>,
    counts: Arc<WriteCounts>,
) {
    let mut queue: VecDeque<WriteJob> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match next_write(&jobs, &riders) {
                Next::Write(job) => queue.push_back(job),
                Next::Riders => {}
                Next::Wake => continue,
                Next::Closed => {
                    // Every handle to the store is gone: the riders still commit.
                    let mut last: VecDeque<WriteJob> = riders.take().into();
                    if !last.is_empty() {
                        commit_batch(&conn, &mut last);
                    }
                    return;
                }
            }
        }
        while queue.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(Msg::Write(job)) => queue.push_back(job),
                Ok(Msg::Wake) => {}
                Err(_) => break,
            }
        }
        // Riders first: each was queued before whatever its caller wrote next.
        for job in riders.take().into_iter().rev() {
            queue.push_front(job);
        }
        if queue.is_empty() {
            continue;
        }
        let changes = conn.total_changes();
        let queued = queue.len();
        if commit_batch(&conn, &mut queue) {
            counts.commits.fetch_add(1, Ordering::Relaxed);
        }
        counts
            .writes
            .fetch_add((queued - queue.len()) as u64, Ordering::Relaxed);
        if conn.total_changes() != changes {
            written.poke();
        }
    }
}

/// What the writer does next.
enum Next {
    Write(WriteJob),
    /// Riders waited [`RIDE_MAX`] for a write: they commit alone.
    Riders,
    /// A rider came while the writer slept: wait again, with a deadline.
    Wake,
    /// Every sender is gone.
    Closed,
}

/// The writer's next job: like [`next`], but while riders wait it sleeps [`RIDE_MAX`] at most.
fn next_write(jobs: &Receiver<Msg>, riders: &Riders) -> Next {
    let start = std::time::Instant::now();
    loop {
        match jobs.try_recv() {
            Ok(Msg::Write(job)) => return Next::Write(job),
            Ok(Msg::Wake) => continue,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return Next::Closed,
            Err(std::sync::mpsc::TryRecvError::Empty) if start.elapsed() < LINGER => {
                std::thread::yield_now()
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => break,
        }
    }
    riders.sleeping.store(true, Ordering::SeqCst);
    std::sync::atomic::fence(Ordering::SeqCst);
    let next = if riders.pending() {
        match jobs.recv_timeout(RIDE_MAX) {
            Ok(Msg::Write(job)) => Next::Write(job),
            Ok(Msg::Wake) => Next::Wake,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Next::Riders,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Next::Closed,
        }
    } else {
        match jobs.recv() {
            Ok(Msg::Write(job)) => Next::Write(job),
            Ok(Msg::Wake) => Next::Wake,
            Err(_) => Next::Closed,
        }
    };
    riders.sleeping.store(false, Ordering::SeqCst);
    next
}

/// Runs the queued writes in one transaction and answers them after its commit. A write that
/// fails is rolled back to its savepoint and answered with its own error; if the commit fails,
/// every write in it is answered with that failure. If SQLite rolled the whole transaction back
/// (an I/O error), the writes that ran are answered with the failure and the rest wait for the
/// next transaction, so none is ever committed on its own by accident. True if it committed.
fn commit_batch(conn: &Connection, queue: &mut VecDeque<WriteJob>) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let why = e.to_string();
        for job in queue.drain(..) {
            let (_, answer) = job(None);
            answer(Some(&why));
        }
        return false;
    }
    // One write alone needs no savepoint: its failure rolls the transaction back.
    let single = queue.len() == 1;
    let mut answers: Vec<Answer> = Vec::with_capacity(queue.len());
    let mut failed_alone = false;
    while let Some(job) = queue.pop_front() {
        if !single && exec(conn, "SAVEPOINT w").is_err() {
            queue.push_front(job);
            break;
        }
        let (ok, answer) = match catch_unwind(AssertUnwindSafe(|| job(Some(conn)))) {
            Ok(done) => done,
            Err(_) => (false, Box::new(|_: Option<&str>| {}) as Answer),
        };
        answers.push(answer);
        if conn.is_autocommit() {
            break; // rolled back under us: see above
        }
        if single {
            failed_alone = !ok;
        } else if ok {
            let _ = exec(conn, "RELEASE w");
        } else {
            let _ = exec(conn, "ROLLBACK TO w").and_then(|_| exec(conn, "RELEASE w"));
        }
    }
    let outcome = if conn.is_autocommit() {
        Err("the transaction was rolled back by the database".to_string())
    } else if failed_alone {
        // The only write failed; its answer carries its own error.
        exec(conn, "ROLLBACK").map_err(|e| e.to_string())
    } else {
        exec(conn, "COMMIT").map_err(|e| e.to_string())
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    let committed = outcome.is_ok() && !failed_alone;
    let why = outcome.err();
    for answer in answers {
        answer(why.as_deref());
    }
    committed
}

#[cfg(test)]
mod tests {
    use crate::store::sql::p;
    use crate::store::{Store, StoreError};
    use futures_util::FutureExt;

    /// A new store holding an empty table `t (x)`, and its folder.
    async fn table_t() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .write(|c| c.batch("CREATE TABLE t (x INTEGER)"))
            .await
            .unwrap();
        (dir, store)
    }

    async fn rows(store: &Store) -> Vec<i64> {
        store
            .read(|c| c.all("SELECT x FROM t ORDER BY x", p![], |r| r.get(0)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn writes_queued_together_commit_together_and_a_failing_one_is_undone_alone() {
        let (dir, store) = table_t().await;
        let (_, commits_before) = store.write_counts();
        // The writer is held inside a first write while 100 more are queued behind it.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let mut held = Box::pin(store.write(move |_| {
            let _ = gate.recv();
            Ok(())
        }));
        assert!((&mut held).now_or_never().is_none());
        let mut queued: Vec<_> = (0..100i64)
            .map(|i| {
                Box::pin(store.write(move |c| {
                    c.run("INSERT INTO t (x) VALUES (?1)", p![i])?;
                    match i {
                        50 => Err(StoreError::Corrupt("refused".into())),
                        70 => panic!("a bug in one write"),
                        _ => Ok(i),
                    }
                }))
            })
            .collect();
        for w in &mut queued {
            // Polled once: the write is queued, and cannot be answered before the held one.
            assert!(w.now_or_never().is_none());
        }
        open.send(()).unwrap();
        held.await.unwrap();
        let mut answers = Vec::new();
        for w in queued {
            answers.push(w.await);
        }
        for (i, a) in answers.iter().enumerate() {
            match i {
                50 => assert!(matches!(a, Err(StoreError::Corrupt(_))), "{a:?}"),
                70 => assert!(matches!(a, Err(StoreError::Stopped)), "{a:?}"),
                _ => assert_eq!(a.as_ref().ok(), Some(&(i as i64))),
            }
        }
        // Every other write is there, the failed and the panicked ones are not.
        let expected: Vec<i64> = (0..100).filter(|i| *i != 50 && *i != 70).collect();
        assert_eq!(rows(&store).await, expected);
        // 101 writes in at most two transactions (the held one may have had its own).
        let (_, commits) = store.write_counts();
        assert!(
            commits - commits_before <= 2,
            "{commits_before} → {commits}"
        );
        // A fresh connection sees them too: they were committed before they were answered.
        let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 98);
        // The writer goes on after a panic.
        store
            .write(|c| c.run("INSERT INTO t (x) VALUES (1000)", p![]))
            .await
            .unwrap();
        assert_eq!(rows(&store).await.last(), Some(&1000));
    }

    #[tokio::test]
    async fn a_write_alone_that_fails_leaves_nothing_behind() {
        let (_dir, store) = table_t().await;
        let failed = store
            .write(|c| {
                c.run("INSERT INTO t (x) VALUES (1)", p![])?;
                c.run("INSERT INTO nowhere (x) VALUES (1)", p![])?;
                Ok(())
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Sqlite(_))), "{failed:?}");
        assert!(rows(&store).await.is_empty());
    }

    #[tokio::test]
    async fn a_queued_write_rides_in_the_next_transaction_or_commits_alone_soon() {
        let (dir, store) = table_t().await;
        let (_, before) = store.write_counts();
        for round in 0..3 {
            store
                .write_queued("a test row", move |c| {
                    c.run("INSERT INTO t (x) VALUES (?1)", p![round * 10 + 1])?;
                    Ok(())
                })
                .unwrap();
            store
                .write(move |c| c.run("INSERT INTO t (x) VALUES (?1)", p![round * 10 + 2]))
                .await
                .unwrap();
            // Both rows are there once the awaited write is.
            let want: Vec<i64> = (0..=round).flat_map(|r| [r * 10 + 1, r * 10 + 2]).collect();
            assert_eq!(rows(&store).await, want);
        }
        // One commit a round (each rider went with the write after it), and perhaps one of the
        // maintenance thread's.
        let (_, after) = store.write_counts();
        assert!(
            after - before <= 4,
            "{} commits for three rounds",
            after - before
        );
        // Nothing follows a rider: it commits on its own, without being waited for.
        store
            .write_queued("a lone row", |c| {
                c.run("INSERT INTO t (x) VALUES (99)", p![])?;
                Ok(())
            })
            .unwrap();
        for _ in 0..200 {
            if rows(&store).await.last() == Some(&99) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(
            rows(&store).await.last(),
            Some(&99),
            "the lone rider committed"
        );
        // And when the store goes, a rider still commits.
        store
            .write_queued("a last row", |c| {
                c.run("INSERT INTO t (x) VALUES (100)", p![])?;
                Ok(())
            })
            .unwrap();
        drop(store);
        let path = dir.path().join("t.db");
        let mut last = 0;
        for _ in 0..200 {
            let other = rusqlite::Connection::open(&path).unwrap();
            last = other
                .query_row("SELECT max(x) FROM t", [], |r| r.get(0))
                .unwrap();
            if last == 100 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert_eq!(
            last, 100,
            "a rider queued before the store closed is stored"
        );
    }
}
