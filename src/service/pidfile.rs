//! `<stateDir>/gateway.pid`: written once the gateway listens, removed when it stops
//! gracefully. A file left by a killed gateway is harmless: a pid counts only while a process
//! with that pid runs our binary.

use std::path::{Path, PathBuf};

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("gateway.pid")
}

/// Records this process as the gateway of `state_dir`; the guard removes the file when dropped.
pub fn write(state_dir: &Path) -> std::io::Result<Guard> {
    let p = path(state_dir);
    std::fs::create_dir_all(state_dir)?;
    std::fs::write(&p, format!("{}\n", std::process::id()))?;
    Ok(Guard(p))
}

pub struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        // Only our own: a newer gateway may have replaced the file.
        if read_pid(&self.0) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn read_pid(p: &Path) -> Option<u32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The pid of a live gateway on `state_dir`, if the pid file names one.
pub fn live(state_dir: &Path) -> Option<u32> {
    let pid = read_pid(&path(state_dir))?;
    is_gateway(pid).then_some(pid)
}

/// Whether `pid` is a running `switchboard` process (not a recycled pid of something else).
pub fn is_gateway(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let name = Path::new(std::str::from_utf8(argv0).unwrap_or_default())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with("switchboard") && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rfind(')')?;
            s[after + 1..].split_whitespace().next().map(|st| st == "Z")
        })
        .unwrap_or(false)
}

/// Sends SIGTERM (a graceful stop) to `pid`.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill only sends a signal; the pid was checked to be one of our gateways.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits up to `timeout` for `pid` to end; true if it did.
pub async fn wait_gone(pid: u32, timeout: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while is_gateway(pid) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_this_process_until_the_guard_drops() {
        let dir = tempfile::tempdir().unwrap();
        let g = write(dir.path()).unwrap();
        assert_eq!(read_pid(&path(dir.path())), Some(std::process::id()));
        drop(g);
        assert!(!path(dir.path()).exists());
        // A stale pid (no such process) is not a gateway.
        std::fs::write(path(dir.path()), "4194303\n").unwrap();
        assert_eq!(live(dir.path()), None);
    }
}
