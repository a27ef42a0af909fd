//! Files read on every turn (IDENTITY.md, MEMORY.md, the daily notes, skills), kept in memory
//! until the kernel says they changed.
//!
//! Why: a turn used to open and read them all, and look up today's and yesterday's notes, which
//! mostly do not exist: about a dozen system calls a message, and on a host that reclaims
//! idle page cache the first message after a pause waited on the disk for those lookups (6 to
//! 13 ms each, measured). Hand edits must still apply to the very next message, so the cache
//! is only as stale as the kernel lets it be: inotify queues an event inside the system call
//! that changed a file, before that call returns, and every lookup here first drains the queue
//! (one non-blocking `read`). An edit that finished before a message arrived is always seen.
//!
//! Each file is watched (through a symlink, its target), and so is its folder (for files
//! created, deleted or renamed over, which is how editors save). A folder's events only count
//! for the names something here depends on, and writes to other files in it queue nothing. Any relevant event, a full event queue or a watch the kernel dropped clears
//! everything: the files are small and re-read once.
//!
//! Where inotify is unavailable (not Linux, or out of watches), every lookup reads the disk, as
//! before.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

/// The process's watcher: one inotify instance for every agent's workspace and skill folder.
static WATCHER: LazyLock<Mutex<Watcher>> = LazyLock::new(|| Mutex::new(Watcher::new()));

/// The text of the file at `path`, empty when it does not exist or cannot be read, from memory
/// unless it changed since it was last read.
pub fn read(path: &Path) -> Arc<str> {
    let mut w = WATCHER.lock();
    w.drain();
    w.read(path)
}

/// [`read`] for several files at once, as of one moment (one look at the kernel's queue).
pub fn read_all<const N: usize>(paths: [&Path; N]) -> [Arc<str>; N] {
    let mut w = WATCHER.lock();
    w.drain();
    paths.map(|path| w.read(path))
}

/// A value worked out from files, cached by its owner along with [`Generation::now`]; it is
/// still good while `Generation::now` returns the same generation. `None` when nothing can be
/// watched (work it out every time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl Generation {
    /// The current generation, after taking in every change the kernel has reported. Read it
    /// before reading the files a value comes from: a change while they are read then makes
    /// the value stale at once, never wrongly fresh.
    pub fn now() -> Option<Generation> {
        let mut w = WATCHER.lock();
        w.drain();
        w.fd.is_some().then_some(Generation(w.generation))
    }
}

/// Watches the file at `path` (which may not exist yet) for changes: the next
/// [`Generation::now`] after one differs. False if it cannot be watched: do not cache.
pub fn watch_file(path: &Path) -> bool {
    WATCHER.lock().watch_file(path)
}

/// Watches what folder `path` holds (names added, removed or renamed; not their contents). A
/// folder that does not exist is watched for its creation. False if it cannot be watched.
pub fn watch_dir(path: &Path) -> bool {
    WATCHER.lock().watch_dir(path)
}

/// What a watch is for: every name in its folder, or only some.
struct Watch {
    /// `None`: every event counts (the file itself, or a folder whose listing matters).
    names: Option<HashSet<OsString>>,
}

struct Watcher {
    fd: Option<OwnedFd>,
    /// Bumped by every change that counts.
    generation: u64,
    watches: HashMap<i32, Watch>,
    by_path: HashMap<PathBuf, i32>,
    files: HashMap<PathBuf, Arc<str>>,
}

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// What changes a folder's listing: names added, removed or renamed. (The contents of a file
/// read here come from its own watch, so writes to other files in a busy folder, such as the
/// exec tool's in a workspace, queue nothing.)
fn dir_flags() -> WatchFlags {
    WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::ONLYDIR
        | WatchFlags::MASK_ADD
}

/// What changes a file.
fn file_flags() -> WatchFlags {
    WatchFlags::MODIFY
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::MASK_ADD
}

impl Watcher {
    fn new() -> Watcher {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)
            .map_err(
                |e| tracing::debug!(error = %e, "no inotify: workspace files are read every turn"),
            )
            .ok();
        Watcher {
            fd,
            generation: 0,
            watches: HashMap::new(),
            by_path: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// The file's text, from memory if it has not changed since it was read (call [`drain`]
    /// first).
    fn read(&mut self, path: &Path) -> Arc<str> {
        if let Some(text) = self.files.get(path) {
            return text.clone();
        }
        let watched = self.watch_file(path);
        let text: Arc<str> = std::fs::read_to_string(path).unwrap_or_default().into();
        if watched {
            self.files.insert(path.to_path_buf(), text.clone());
        }
        text
    }

    /// Takes in every event queued so far; one `read` that finds none when nothing changed.
    fn drain(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        let mut changed = false;
        let mut dropped = Vec::new();
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => {
                    // Cannot tell what changed: forget everything and stop caching.
                    tracing::warn!(error = %e, "reading file-change events failed; workspace files are read every turn from now on");
                    self.fd = None;
                    changed = true;
                    break;
                }
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                changed = true;
                continue;
            }
            if flags.intersects(ReadFlags::IGNORED | ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF)
            {
                // The watched thing is gone or moved: its path no longer names it.
                dropped.push(event.wd());
                changed = true;
                continue;
            }
            let Some(watch) = self.watches.get(&event.wd()) else {
                continue;
            };
            let counts = match (&watch.names, event.file_name()) {
                (None, _) => true,
                (Some(names), Some(name)) => {
                    use std::os::unix::ffi::OsStrExt;
                    names.contains(std::ffi::OsStr::from_bytes(name.to_bytes()))
                }
                (Some(_), None) => false,
            };
            changed |= counts;
        }
        for wd in dropped {
            if self.watches.remove(&wd).is_some() {
                // Every path that led to it (two agents' files may be links to one).
                self.by_path.retain(|_, w| *w != wd);
                if let Some(fd) = &self.fd {
                    let _ = inotify::remove_watch(fd, wd);
                }
            }
        }
        if changed {
            self.generation += 1;
            self.files.clear();
        }
    }

    /// Adds (or widens) the watch on `path`; `name` narrows a folder's watch to that name, `None`
    /// makes every event count.
    fn add(&mut self, path: &Path, flags: WatchFlags, name: Option<OsString>) -> bool {
        let Some(fd) = &self.fd else { return false };
        let wd = match self.by_path.get(path) {
            Some(&wd) => wd,
            None => match inotify::add_watch(fd, path, flags) {
                Ok(wd) => {
                    self.by_path.insert(path.to_path_buf(), wd);
                    // Two paths to one inode (hard links, symlinks) share a watch descriptor.
                    self.watches.entry(wd).or_insert_with(|| Watch {
                        names: Some(HashSet::new()),
                    });
                    wd
                }
                Err(_) => return false,
            },
        };
        let Some(watch) = self.watches.get_mut(&wd) else {
            return false;
        };
        match (name, &mut watch.names) {
            (None, names) => *names = None,
            (Some(n), Some(names)) => {
                names.insert(n);
            }
            (Some(_), None) => {}
        }
        true
    }

    fn watch_file(&mut self, path: &Path) -> bool {
        if self.fd.is_none() {
            return false;
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        // The folder first: a file created between the two watches is then still seen.
        if !self.watch_in(dir, Some(name.to_os_string())) {
            return false;
        }
        // The file itself (through a symlink, its target), when it exists: an edit made through
        // another path to it (a symlink's target, a hard link elsewhere) reaches only this watch.
        self.add(path, file_flags(), None) || !path.exists()
    }

    /// Watches folder `dir`, for `name` in it or (`None`) for everything in it; a missing folder
    /// is watched for its creation, in turn.
    fn watch_in(&mut self, dir: &Path, name: Option<OsString>) -> bool {
        if self.add(dir, dir_flags(), name) {
            return true;
        }
        if dir.exists() {
            return false; // there, but cannot be watched
        }
        match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(n)) if parent != dir => {
                self.watch_in(parent, Some(n.to_os_string()))
            }
            _ => false,
        }
    }

    fn watch_dir(&mut self, path: &Path) -> bool {
        self.fd.is_some() && self.watch_in(path, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_creations_deletions_and_renames_over_are_seen_by_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("MEMORY.md");
        assert_eq!(&*read(&file), "", "a missing file reads as empty");
        std::fs::write(&file, "one").unwrap();
        assert_eq!(&*read(&file), "one", "created");
        assert_eq!(&*read(&file), "one");
        std::fs::write(&file, "two").unwrap();
        assert_eq!(&*read(&file), "two", "rewritten in place");
        // How editors save: a new file renamed over the old one.
        let tmp = dir.path().join(".MEMORY.md.swp");
        std::fs::write(&tmp, "three").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(&*read(&file), "three", "renamed over");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&file)
                .unwrap();
            f.write_all(b" and four").unwrap();
        }
        assert_eq!(&*read(&file), "three and four", "appended to");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(&*read(&file), "", "deleted");
    }

    #[test]
    fn a_file_in_a_folder_that_does_not_exist_yet_is_seen_once_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory/2026-12-07.md");
        assert_eq!(&*read(&file), "");
        std::fs::create_dir(dir.path().join("memory")).unwrap();
        std::fs::write(&file, "- 09:00 called the bank").unwrap();
        assert_eq!(&*read(&file), "- 09:00 called the bank");
    }

    #[test]
    fn an_edit_to_a_symlinks_target_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("identity.md");
        std::fs::write(&target, "I am Jarvis").unwrap();
        let link = dir.path().join("IDENTITY.md");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(&*read(&link), "I am Jarvis");
        std::fs::write(&target, "I am CLU").unwrap();
        assert_eq!(&*read(&link), "I am CLU");
    }

    /// Two agents' files may be links to one shared file: when it is replaced, neither path
    /// may keep pointing at the dropped watch (it would go unwatched, read every turn).
    #[test]
    fn links_to_one_replaced_file_are_both_seen_and_watched_again() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared.md");
        std::fs::write(&shared, "one").unwrap();
        let (a, b) = (dir.path().join("a.md"), dir.path().join("b.md"));
        std::os::unix::fs::symlink(&shared, &a).unwrap();
        std::os::unix::fs::symlink(&shared, &b).unwrap();
        assert_eq!((&*read(&a), &*read(&b)), ("one", "one"));
        let tmp = dir.path().join("shared.tmp");
        std::fs::write(&tmp, "two").unwrap();
        std::fs::rename(&tmp, &shared).unwrap();
        assert_eq!((&*read(&a), &*read(&b)), ("two", "two"));
        let w = WATCHER.lock();
        assert!(
            w.by_path.values().all(|wd| w.watches.contains_key(wd)),
            "a path still names a watch the kernel dropped"
        );
        assert!(
            w.files.contains_key(&a) && w.files.contains_key(&b),
            "both cached again"
        );
    }

    #[test]
    fn a_generation_moves_on_when_a_watched_folder_gains_an_entry_and_not_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let skills = dir.path().join("skills");
        let before = Generation::now().expect("inotify on Linux");
        assert!(
            watch_dir(&skills),
            "a missing folder is watched for its creation"
        );
        // Unrelated activity beside it does not count.
        std::fs::write(dir.path().join("switchboard.db-wal"), "frames").unwrap();
        // Other tests in this process share the watcher and may move it on: only a change
        // that must count is asserted.
        std::fs::create_dir(&skills).unwrap();
        let created = Generation::now().unwrap();
        assert_ne!(created, before, "the folder's creation counts");
        assert!(watch_dir(&skills));
        std::fs::create_dir(skills.join("weather")).unwrap();
        assert_ne!(
            Generation::now().unwrap(),
            created,
            "a new skill folder counts"
        );
    }
}
