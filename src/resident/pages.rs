//! Dropping start-up's pages of code and read-only data from the process's mappings.
//!
//! Starting touches code the gateway never runs again: argument and config parsing, migrations,
//! the dynamic loader's relocations of the C++ runtime whisper.cpp links, TLS set-up. Those
//! pages stay mapped, and the kernel maps the neighbours of every page touched as well (fault-
//! around, 64 KiB at a time, more when the page cache holds the binary in large folios): over
//! 10 MiB of the 15 MiB an idle gateway had resident were clean pages of its own binary.
//!
//! Once the gateway is up, [`drop_clean_pages`] tells the kernel (`MADV_DONTNEED`) that the
//! process no longer needs the *clean, file-backed, read-only* mappings (code, read-only data of
//! the binary and its libraries). Nothing is lost: those pages are unchanged copies of the files,
//! which stay in the page cache; what the gateway runs next faults back in at the cost of a
//! minor fault. Mappings holding any private page (relocated data, anything written) are left
//! alone, since dropping those would bring back the file's unrelocated bytes.

/// Drops the clean read-only file mappings of this process; returns the bytes they held.
#[cfg(target_os = "linux")]
pub fn drop_clean_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut dropped = 0;
    for m in mappings(&smaps) {
        if !m.droppable() {
            continue;
        }
        // SAFETY: the range is a whole mapping of this process, read-only and backed by an
        // unmodified file (no anonymous pages), so discarding its pages only means they are
        // read from the page cache again when next touched; no memory is freed that any
        // reference points into.
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                (m.end - m.start) as usize,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            dropped += m.rss_kb * 1024;
        }
    }
    dropped
}

#[cfg(not(target_os = "linux"))]
pub fn drop_clean_pages() -> u64 {
    0
}

/// One mapping of `/proc/self/smaps`, as far as deciding goes.
#[derive(Debug, Default, PartialEq)]
struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    path: String,
    rss_kb: u64,
    anonymous_kb: u64,
    locked_kb: u64,
}

impl Mapping {
    fn droppable(&self) -> bool {
        let p = self.perms.as_bytes();
        // Readable, not writable, private; executable or not.
        let read_only = p.len() == 4 && p[0] == b'r' && p[1] == b'-' && p[3] == b'p';
        read_only
            && self.path.starts_with('/')
            && self.rss_kb > 0
            // No page of its own (copied on write, as relocations are): every page is the
            // page cache's. Those may count as Private_Dirty when the file itself was written
            // recently (a binary just built or installed, not yet written back); unmapping
            // them loses nothing either.
            && self.anonymous_kb == 0
            && self.locked_kb == 0
    }
}

fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && !first.ends_with(':')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            let perms = words.next().unwrap_or_default().to_string();
            // offset, device, inode, then the path (which may contain spaces).
            let path = words.skip(3).collect::<Vec<_>>().join(" ");
            out.push(Mapping {
                start,
                end,
                perms,
                path,
                ..Mapping::default()
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let kb = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match first {
            "Rss:" => m.rss_kb = kb,
            "Anonymous:" => m.anonymous_kb = kb,
            "Locked:" => m.locked_kb = kb,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0400000 r--p 00000000 fe:01 123 /usr/bin/switchboard
Rss:                1000 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Locked:                0 kB
55d0c0400000-55d0c1400000 r-xp 00400000 fe:01 123 /usr/bin/switchboard
Rss:                8000 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Locked:                0 kB
55d0c1400000-55d0c1600000 r--p 01400000 fe:01 123 /usr/bin/switchboard
Rss:                1600 kB
Private_Dirty:      1500 kB
Anonymous:          1500 kB
Locked:                0 kB
55d0c1600000-55d0c1700000 rw-p 01600000 fe:01 123 /usr/bin/switchboard
Rss:                  40 kB
Private_Dirty:        40 kB
Anonymous:            40 kB
Locked:                0 kB
7f00-8f00 rw-p 00000000 00:00 0 
Rss:                 500 kB
Private_Dirty:       500 kB
Anonymous:           500 kB
Locked:                0 kB
55d0c1700000-55d0c1800000 r-xp 00000000 fe:01 124 /usr/bin/just-built
Rss:                 900 kB
Private_Dirty:       900 kB
Anonymous:             0 kB
Locked:                0 kB
7ffd0000-7ffd2000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Locked:                0 kB
7e00-7f00 r-xp 00000000 fe:01 9 /opt/my lib/libx.so
Rss:                  64 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Locked:                0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_are_dropped() {
        let maps = mappings(SMAPS);
        assert_eq!(maps.len(), 8);
        let dropped: Vec<(&str, &str)> = maps
            .iter()
            .filter(|m| m.droppable())
            .map(|m| (m.perms.as_str(), m.path.as_str()))
            .collect();
        // Code and read-only data of the binary, the code of a binary whose file is not yet
        // written back (its page cache is dirty, none of the pages is the process's own), a
        // library whose path has a space; never the relocated read-only data (it has anonymous
        // pages), writable data, the heap or the vdso.
        assert_eq!(
            dropped,
            vec![
                ("r--p", "/usr/bin/switchboard"),
                ("r-xp", "/usr/bin/switchboard"),
                ("r-xp", "/usr/bin/just-built"),
                ("r-xp", "/opt/my lib/libx.so"),
            ]
        );
        assert_eq!(maps[1].start, 0x55d0c0400000);
        assert_eq!(maps[1].rss_kb, 8000);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_keeps_the_process_working() {
        // Runs for real on this test process: afterwards code and constants still work.
        let before = format!("{:?}", (1..5).map(|i| i * 3).collect::<Vec<_>>());
        let _ = drop_clean_pages();
        let after = format!("{:?}", (1..5).map(|i| i * 3).collect::<Vec<_>>());
        assert_eq!(before, after);
        assert_eq!(after, "[3, 6, 9, 12]");
    }
}
