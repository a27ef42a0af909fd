//! The SQLite connections and their threads: callers await, and a runtime worker never waits
//! on the database (it may run a short statement itself, never wait for a lock).
//!
//! - **The writer** is the connection that writes. A write whose caller finds it free, with
//!   nothing queued for it, runs at once on the caller's thread in a transaction of its own:
//!   a message's three writes used to cost two thread hand-offs each (to the writer and back,
//!   each a wake-up that on a VM can mean a halted CPU), and the writer's thread spun a little
//!   after every job to catch the next one cheaply, which cost CPU on every message.
//!   Writes that find it busy are queued for the writer's **thread**, which commits the writes
//!   queued while it was busy together, in one transaction (group commit): each runs inside a
//!   savepoint of it, so one that fails is rolled back alone, and each caller is answered only
//!   after the commit that holds its write. While anything is queued, new writes queue behind
//!   it, so under a burst writes group instead of racing for the connection; once a commit has
//!   grouped several writes, writes go to the thread for a moment even when the connection is
//!   free, and the thread lets them gather before it begins ([`GATHER`]). "Stored before
//!   acknowledged" is kept either way: an `accept` returns after the commit, never before.
//!   A write that runs long (indexing, imports) goes to the thread ([`Engine::write_long`]).
//! - **The reader** is a second connection for reads, so a read never waits behind a batch of
//!   writes (WAL lets it see the last commit while the writer works). A point lookup runs on the
//!   caller's thread when the reader is free (a few microseconds of work, never a wait: a busy
//!   reader sends it to the reader's thread instead); a scan (`scan`) always goes to the thread.
//!   A message makes about six reads; a hop to another thread and back for each was half of the
//!   added latency of a message. A point lookup that finds the writer idle runs on the writer's
//!   connection instead: the reader's page cache is dropped whenever another connection has
//!   committed since its last read, so there nearly every read re-read its pages.
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

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

/// How long the writer's thread lets writes gather before it begins a transaction, while the
/// store is under load (see [`Writer::loaded_until`]). A commit costs the same few WAL frames
/// (one per B-tree page it changed) whether it holds one write or twenty: under a burst of
/// 200 chats, commits of one write each wrote ~7 frames apiece, and writing WAL frames was the
/// largest single cost in the burst's profile. A quiet message never waits: it runs on its
/// caller's thread.
const GATHER: Duration = Duration::from_micros(500);

/// How long the store counts as under load after a commit that grouped several writes.
#[cfg(not(test))]
const LOADED_FOR: Duration = Duration::from_millis(2);
/// Long enough that a test on a busy machine still finds the store loaded when it looks.
#[cfg(test)]
const LOADED_FOR: Duration = Duration::from_secs(30);

/// How long a rider (see [`Engine::write_queued`]) waits for a transaction to ride in before it
/// commits alone.
const RIDE_MAX: Duration = Duration::from_secs(1);

/// How long a connection waits for a lock another process (or a checkpoint) holds: the
/// connections are opened with it, and a write on its caller's thread, which must not wait at
/// all, sets it back to this after its `BEGIN`.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(5);

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

/// The writing side, shared by the writer's thread and the callers that write on their own.
struct Writer {
    /// Held for a whole transaction, by the thread or by a caller.
    conn: parking_lot::Mutex<Connection>,
    riders: Riders,
    /// Writes sent to the thread that it has not yet taken with the connection held. While it
    /// is not zero, a write queues behind them instead of running on its caller's thread: they
    /// commit together, and none jumps ahead into the gap before the thread takes the lock.
    backlog: AtomicUsize,
    /// Until when (microseconds after [`Writer::epoch`]) the store counts as under load: set
    /// when the thread commits writes that queued together, i.e. several callers write at once.
    /// Until then a write queues for the thread even when the connection is free, and the thread
    /// lets writes gather for [`GATHER`] first: a burst's writes commit in a few large
    /// transactions instead of many small ones.
    loaded_until: AtomicU64,
    epoch: std::time::Instant,
    counts: WriteCounts,
    /// Shared with the maintenance thread, which has indexing or a checkpoint to do after a
    /// commit that changed something.
    written: Arc<Poke>,
}

impl Writer {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Whether several callers wrote at once a moment ago (see [`Writer::loaded_until`]).
    fn loaded(&self) -> bool {
        self.now_us() < self.loaded_until.load(Ordering::Relaxed)
    }

    /// The connection, if it is free with nothing queued for it and the store is not under
    /// load: a read may use it for a moment without delaying a write.
    fn idle(&self) -> Option<parking_lot::MutexGuard<'_, Connection>> {
        if self.backlog.load(Ordering::SeqCst) > 0 || self.loaded() {
            return None;
        }
        self.conn.try_lock()
    }

    /// Runs `queue` in one transaction begun on `conn` (see [`run_batch`]), keeping the counts
    /// and poking the maintenance thread. What is left in `queue` is for the next transaction.
    fn commit(&self, conn: &Connection, queue: &mut VecDeque<WriteJob>, began: bool) {
        let changes = conn.total_changes();
        let queued = queue.len();
        let committed = if began {
            run_batch(conn, queue)
        } else {
            commit_batch(conn, queue)
        };
        if committed {
            self.counts.commits.fetch_add(1, Ordering::Relaxed);
        }
        self.counts
            .writes
            .fetch_add((queued - queue.len()) as u64, Ordering::Relaxed);
        if conn.total_changes() != changes {
            self.written.poke();
        }
    }

    /// Runs `job` here and now, with the riders waiting, if the connection is idle
    /// ([`Writer::idle`]: free, nothing queued for the thread, and the store not under load,
    /// when the thread gathers writes into one transaction) and no other process holds the
    /// database's write lock (this thread must not wait for it). Gives the job back otherwise;
    /// gives back, too, jobs left over when SQLite rolled the transaction back under us, for the
    /// thread to run.
    fn run_here(&self, job: WriteJob) -> std::result::Result<(), Vec<WriteJob>> {
        let Some(conn) = self.idle() else {
            return Err(vec![job]);
        };
        let _ = conn.busy_timeout(Duration::ZERO);
        let began = exec(&conn, "BEGIN IMMEDIATE");
        let _ = conn.busy_timeout(BUSY_WAIT);
        if began.is_err() {
            return Err(vec![job]);
        }
        // Riders first: each was queued before whatever its caller wrote next.
        let mut queue: VecDeque<WriteJob> = self.riders.take().into();
        queue.push_back(job);
        self.commit(&conn, &mut queue, true);
        match queue.is_empty() {
            true => Ok(()),
            false => Err(queue.into()),
        }
    }
}

pub(in crate::store) struct Engine {
    writes: Sender<Msg>,
    writer: Arc<Writer>,
    reads: Sender<ReadJob>,
    reader: Arc<parking_lot::Mutex<Connection>>,
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
        let (reads, read_rx) = channel::<ReadJob>();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                // Statements recurse a little inside SQLite; nothing here needs the default 2 MiB.
                .stack_size(256 * 1024)
                .spawn(f)
                .map_err(|e| StoreError::Thread(e.to_string()))
        };
        let writer = Arc::new(Writer {
            conn: parking_lot::Mutex::new(writer),
            riders: Riders::default(),
            backlog: AtomicUsize::new(0),
            loaded_until: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            counts: WriteCounts::default(),
            written,
        });
        let w = writer.clone();
        spawn("db-writer", Box::new(move || write_loop(&w, write_rx)))?;
        let reader = Arc::new(parking_lot::Mutex::new(reader));
        let shared = reader.clone();
        spawn("db-reader", Box::new(move || read_loop(shared, read_rx)))?;
        Ok(Engine {
            writes,
            writer,
            reads,
            reader,
        })
    }

    /// Resolves once the maintenance thread has caught up with the writes so far.
    pub(in crate::store) async fn caught_up(&self) {
        self.writer.written.caught_up().await
    }

    /// Ends the load the last grouped commit started (see [`Writer::loaded_until`]), as if
    /// [`LOADED_FOR`] had passed.
    #[cfg(test)]
    pub(in crate::store) fn end_load(&self) {
        self.writer.loaded_until.store(0, Ordering::Relaxed);
    }

    /// (writes run, transactions committed) so far.
    pub(in crate::store) fn counts(&self) -> (u64, u64) {
        let c = &self.writer.counts;
        (
            c.writes.load(Ordering::Relaxed),
            c.commits.load(Ordering::Relaxed),
        )
    }

    /// Runs `f` in a transaction (its own on this thread when the writer is free, else the
    /// writer thread's next one); returns once that transaction is committed. Keep `f` short:
    /// it may run on a runtime worker. Longer ones are [`Engine::write_long`].
    pub(in crate::store) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(write_job(f, move |out| drop(tx.send(out))))?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// [`Engine::write`], always on the writer's thread: for a write that may take a while
    /// (indexing a batch of turns, an import), which must not hold a runtime worker.
    pub(in crate::store) async fn write_long<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue(vec![write_job(f, move |out| drop(tx.send(out)))])?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// [`Engine::write`] for a thread outside the runtime (the maintenance thread).
    pub(super) fn write_wait<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(write_job(f, move |out| drop(tx.send(out))))?;
        rx.blocking_recv().map_err(|_| StoreError::Stopped)?
    }

    /// Runs `job` here when the writer is free (see [`Writer::run_here`]), else hands it to the
    /// writer's thread.
    fn submit(&self, job: WriteJob) -> Result<()> {
        match self.writer.run_here(job) {
            Ok(()) => Ok(()),
            Err(left) => self.queue(left),
        }
    }

    /// Hands `jobs` to the writer's thread.
    fn queue(&self, jobs: Vec<WriteJob>) -> Result<()> {
        for job in jobs {
            self.writer.backlog.fetch_add(1, Ordering::SeqCst);
            if self.writes.send(Msg::Write(job)).is_err() {
                self.writer.backlog.fetch_sub(1, Ordering::SeqCst);
                return Err(StoreError::Stopped);
            }
        }
        Ok(())
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
        let riders = &self.writer.riders;
        let first = {
            let mut jobs = riders.jobs.lock();
            jobs.push(job);
            jobs.len() == 1
        };
        std::sync::atomic::fence(Ordering::SeqCst);
        // The writer checks for riders after it says it sleeps, so one of the two sees the other.
        if first && riders.sleeping.load(Ordering::SeqCst) {
            self.writes
                .send(Msg::Wake)
                .map_err(|_| StoreError::Stopped)?;
        }
        Ok(())
    }

    /// Runs the point lookup `f` (outside any transaction: each statement sees the last commit)
    /// here and now on a free connection, else on the reader's thread. The writer's connection
    /// is tried first, when it is idle and the store is not under load: its page cache is
    /// current, since it made the last commit. The reader's is thrown away at the first read
    /// after every commit it did not see made (SQLite cannot tell which pages changed), so
    /// each of a message's reads there began by re-reading the pages it needed from the WAL.
    pub(in crate::store) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if let Some(conn) = self.writer.idle() {
            return f(&conn);
        }
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

/// How long the reader's thread keeps looking for the next job after finishing one, before it
/// sleeps. Scans come in runs a few microseconds apart; waking a sleeping thread (on a VM,
/// often a halted CPU) costs tens of microseconds each time. An idle gateway does not spin:
/// this only follows work. (The writer's thread does not linger: a quiet message's writes run
/// on their callers' threads, and under a burst its queue is rarely empty.)
const LINGER: Duration = Duration::from_micros(200);

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

fn write_loop(w: &Writer, jobs: Receiver<Msg>) {
    let mut queue: VecDeque<WriteJob> = VecDeque::new();
    loop {
        // Jobs taken from the channel this round (`queue` may still hold some from the last
        // round, when SQLite rolled its transaction back under us: those were counted then).
        let mut taken = 0;
        if queue.is_empty() {
            match next_write(&jobs, &w.riders) {
                Next::Write(job) => {
                    queue.push_back(job);
                    taken = 1;
                }
                Next::Riders => {}
                Next::Wake => continue,
                Next::Closed => {
                    // Every handle to the store is gone: the riders still commit.
                    let conn = w.conn.lock();
                    let mut last: VecDeque<WriteJob> = w.riders.take().into();
                    if !last.is_empty() {
                        w.commit(&conn, &mut last, false);
                    }
                    return;
                }
            }
        }
        if w.loaded() {
            // Under load: let the other callers' writes join this transaction.
            std::thread::sleep(GATHER);
        }
        let conn = w.conn.lock();
        // The backlog drops only now, with the connection held: until now, writes on other
        // threads queued behind these instead of running first.
        while queue.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(Msg::Write(job)) => {
                    queue.push_back(job);
                    taken += 1;
                }
                Ok(Msg::Wake) => {}
                Err(_) => break,
            }
        }
        let _ = w
            .backlog
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_sub(taken))
            });
        // Riders first: each was queued before whatever its caller wrote next.
        for job in w.riders.take().into_iter().rev() {
            queue.push_front(job);
        }
        if queue.is_empty() {
            continue;
        }
        w.commit(&conn, &mut queue, false);
        if taken > 1 {
            let until = w.now_us() + LOADED_FOR.as_micros() as u64;
            w.loaded_until.store(until, Ordering::Relaxed);
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

/// The writer's next job, waited for without spinning (only writes that found the connection
/// busy come here, so waking the thread is not on a quiet message's path); while riders wait it
/// sleeps [`RIDE_MAX`] at most.
fn next_write(jobs: &Receiver<Msg>, riders: &Riders) -> Next {
    match jobs.try_recv() {
        Ok(Msg::Write(job)) => return Next::Write(job),
        Ok(Msg::Wake) => return Next::Wake,
        Err(std::sync::mpsc::TryRecvError::Disconnected) => return Next::Closed,
        Err(std::sync::mpsc::TryRecvError::Empty) => {}
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

/// Begins a transaction and runs the queued writes in it (see [`run_batch`]); if it cannot
/// begin, every write is answered with why. True if it committed.
fn commit_batch(conn: &Connection, queue: &mut VecDeque<WriteJob>) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let why = e.to_string();
        for job in queue.drain(..) {
            let (_, answer) = job(None);
            answer(Some(&why));
        }
        return false;
    }
    run_batch(conn, queue)
}

/// Runs the queued writes in the transaction just begun and answers them after its commit. A
/// write that fails is rolled back to its savepoint and answered with its own error; if the
/// commit fails, every write in it is answered with that failure. If SQLite rolled the whole
/// transaction back (an I/O error), the writes that ran are answered with the failure and the
/// rest wait for the next transaction, so none is ever committed on its own by accident. True
/// if it committed.
fn run_batch(conn: &Connection, queue: &mut VecDeque<WriteJob>) -> bool {
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

    /// A write in progress, awaited for its answer.
    type Pending<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = crate::store::Result<()>> + 'a>>;

    /// A write that holds the writer's thread (already inside it) until `open` is sent.
    fn hold_writer(store: &Store) -> (std::sync::mpsc::Sender<()>, Pending<'_>) {
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let mut held = Box::pin(store.write_long(move |_| {
            let _ = gate.recv();
            Ok(())
        }));
        assert!((&mut held).now_or_never().is_none());
        (open, held)
    }

    /// Whether a write soon runs on this thread again: within a second, once whatever the
    /// writer's thread is doing (the maintenance thread's writes too) is done. The load is
    /// ended before each try: a test's write grouped with the maintenance thread's would start
    /// it again, and in tests it lasts 30 s.
    async fn writes_run_here_again(store: &Store) -> bool {
        let here = std::thread::current().id();
        for _ in 0..200 {
            store.end_load_for_test();
            let id = store
                .write(|_| Ok(std::thread::current().id()))
                .await
                .unwrap();
            if id == here {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        false
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
        // The writer is held inside a first write (on its thread) while 100 more are queued
        // behind it.
        let (open, held) = hold_writer(&store);
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
    async fn a_write_runs_on_its_callers_thread_when_the_writer_is_free_and_never_waits_for_a_lock()
    {
        let (dir, store) = table_t().await;
        let here = std::thread::current().id();
        let ran_on = store
            .write(|c| {
                c.run("INSERT INTO t (x) VALUES (1)", p![])?;
                Ok(std::thread::current().id())
            })
            .await
            .unwrap();
        assert_eq!(ran_on, here, "a quiet write runs where it was called");
        // Committed before it returned: another connection sees it.
        let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        // Another process holds the write lock: the write must not block this thread (a
        // runtime worker) waiting for it; it goes to the writer's thread, which waits.
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut w = Box::pin(store.write(|c| {
            c.run("INSERT INTO t (x) VALUES (2)", p![])?;
            Ok(std::thread::current().id())
        }));
        assert!((&mut w).now_or_never().is_none());
        other
            .execute_batch("INSERT INTO t (x) VALUES (3); COMMIT")
            .unwrap();
        let ran_on = w.await.unwrap();
        assert_ne!(ran_on, here, "it waited on the writer's thread");
        assert_eq!(rows(&store).await, vec![1, 2, 3]);
        // Once the writer's thread has gone back to sleep, writes run here again.
        assert!(writes_run_here_again(&store).await);
    }

    #[tokio::test]
    async fn after_writes_came_together_the_next_ones_gather_on_the_writers_thread() {
        let (_dir, store) = table_t().await;
        let here = std::thread::current().id();
        // Three writes at once: the first holds the writer's thread, the other two queue.
        let (open, held) = hold_writer(&store);
        let mut queued: Vec<_> = (0..2i64)
            .map(|i| Box::pin(store.write(move |c| c.run("INSERT INTO t (x) VALUES (?1)", p![i]))))
            .collect();
        for w in &mut queued {
            assert!(w.now_or_never().is_none());
        }
        open.send(()).unwrap();
        held.await.unwrap();
        for w in queued {
            w.await.unwrap();
        }
        // Now under load: a write that finds the connection free still goes to the thread,
        // where it waits for others to join its transaction. (Whether the two below share one
        // is not asserted: the maintenance thread's own write may land between them.)
        let first = Box::pin(store.write(|c| {
            c.run("INSERT INTO t (x) VALUES (10)", p![])?;
            Ok(std::thread::current().id())
        }));
        let second = Box::pin(store.write(|c| {
            c.run("INSERT INTO t (x) VALUES (11)", p![])?;
            Ok(std::thread::current().id())
        }));
        let (first, second) = futures_util::future::join(first, second).await;
        assert_ne!(first.unwrap(), here, "it ran on the writer's thread");
        assert_ne!(second.unwrap(), here);
        assert_eq!(rows(&store).await, vec![0, 1, 10, 11]);
        // Once the load has passed, a write runs where it is called again.
        assert!(writes_run_here_again(&store).await);
    }

    #[tokio::test]
    async fn a_read_sees_the_last_commit_and_never_waits_behind_writes() {
        let (_dir, store) = table_t().await;
        store
            .write(|c| c.run("INSERT INTO t (x) VALUES (1)", p![]))
            .await
            .unwrap();
        // Quiet: the lookup runs at once (on the idle writer's connection) and sees the commit.
        let quiet = Box::pin(rows(&store)).now_or_never();
        assert_eq!(quiet, Some(vec![1]));
        // The writer is busy inside a transaction and more writes wait for it: a lookup still
        // answers at once, from the last commit.
        let (open, held) = hold_writer(&store);
        let mut queued = Box::pin(store.write(|c| c.run("INSERT INTO t (x) VALUES (2)", p![])));
        assert!((&mut queued).now_or_never().is_none());
        let busy = Box::pin(rows(&store)).now_or_never();
        assert_eq!(busy, Some(vec![1]));
        open.send(()).unwrap();
        held.await.unwrap();
        queued.await.unwrap();
        assert_eq!(rows(&store).await, vec![1, 2]);
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
