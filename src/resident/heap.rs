//! Handing memory back after a burst of messages.
//!
//! glibc keeps what a burst of messages freed in its arenas (the gateway stayed 10–20 MiB above
//! its idle size after 200 chats at once); `malloc_trim` returns the free pages. It used to run
//! every five seconds, which woke an idle gateway twelve times a minute for nothing. Now the
//! message path calls [`note_activity`], and the trimmer thread trims once activity has paused
//! for [`QUIET`] (or every [`AT_MOST`] during a long stream), then sleeps until the next message.
//!
//! Messages also fault in code the idle gateway does not run (the turn, the model client, the
//! store's statements: ~4 MiB, with the kernel's fault-around), which would otherwise stay for
//! the gateway's whole life. After [`PAGES_AFTER`] without a message the trimmer drops them
//! again (`resident::pages`), as start-up's drop and the control room's quiet minute do; once
//! the connections a burst left idle have closed ([`LATE_TRIM`]), it trims once more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long activity must pause before trimming.
const QUIET: Duration = Duration::from_secs(2);
/// The longest a steady stream of messages goes without a trim.
const AT_MOST: Duration = Duration::from_secs(30);
/// How long without a message before code pages are dropped: the next message reads them back
/// from the page cache (a few milliseconds of minor faults, hidden behind a model call after a
/// pause this long), so a conversation in progress never pays it.
const PAGES_AFTER: Duration = Duration::from_secs(60);

/// How long after the code pages are dropped the heap is trimmed once more: idle HTTP
/// connections close after 90 s unused, checked every 90 s, so all have closed by then.
const LATE_TRIM: Duration = Duration::from_secs(150);

static ACTIVE: AtomicBool = AtomicBool::new(false);
static LOCK: Mutex<()> = Mutex::new(());
static WAKE: Condvar = Condvar::new();

/// Called when a message was handled: memory may have been freed. One atomic swap when the
/// trimmer already knows; a wake-up only when it was asleep.
pub fn note_activity() {
    if !ACTIVE.swap(true, Ordering::AcqRel) {
        let _guard = LOCK.lock();
        WAKE.notify_one();
    }
}

/// Returns the heap start-up freed (parsed config trees, migrations, the first connections'
/// buffers): until the first message, the trimmer thread has not run.
pub fn trim_now() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the OS; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts the trimmer thread (glibc only; other allocators return memory themselves).
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("heap-trim".into())
            // It only sleeps and calls malloc_trim.
            .stack_size(64 * 1024)
            .spawn(trimmer);
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no heap trimming");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trimmer() {
    loop {
        // Asleep until a message is handled.
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let guard = WAKE
            .wait_while(guard, |_| !ACTIVE.load(Ordering::Acquire))
            .unwrap_or_else(|e| e.into_inner());
        drop(guard);
        // Wait for a pause in the activity.
        let started = Instant::now();
        while ACTIVE.swap(false, Ordering::AcqRel) && started.elapsed() < AT_MOST {
            std::thread::sleep(QUIET);
        }
        // SAFETY: malloc_trim only returns free memory to the OS; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
        // A quiet minute more, and the code the messages ran goes too.
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, waited) = WAKE
            .wait_timeout_while(guard, PAGES_AFTER, |_| !ACTIVE.load(Ordering::Acquire))
            .unwrap_or_else(|e| e.into_inner());
        drop(guard);
        if !waited.timed_out() {
            continue;
        }
        let bytes = super::pages::drop_clean_pages();
        tracing::debug!(kib = bytes / 1024, "quiet: dropped code pages");
        // Connections a burst left idle close up to three minutes after their last use; once
        // they have, what they held goes back too.
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, waited) = WAKE
            .wait_timeout_while(guard, LATE_TRIM, |_| !ACTIVE.load(Ordering::Acquire))
            .unwrap_or_else(|e| e.into_inner());
        drop(guard);
        if waited.timed_out() {
            // SAFETY: as above.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}
