//! A throwaway PostgreSQL cluster from Debian's packages: `initdb` in a temp dir, started on a
//! free loopback port, one per test process, with a fresh database per test. Run as the
//! `postgres` OS user when the tests run as root (PostgreSQL refuses root). A watcher process
//! stops the cluster and removes its files when the test process ends, however it ends.
//!
//! Without PostgreSQL's binaries the tests that need it are skipped, loudly, except under CI
//! (`CI=true`), where a missing server is a failure: `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Cluster {
    bin: PathBuf,
    port: u16,
    /// Run commands as this OS user (`postgres` when we are root).
    user: Option<String>,
    next_db: AtomicUsize,
}

/// The directory of `initdb` and friends, if PostgreSQL is installed.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

impl Cluster {
    /// The cluster for this test process, started on first use; `None` (after saying so) when
    /// PostgreSQL is not installed and this is not CI.
    pub fn shared() -> Option<&'static Cluster> {
        static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
        CLUSTER.get_or_init(Cluster::start).as_ref()
    }

    fn start() -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is not installed: .ci/run must install the postgresql package"
            );
            eprintln!(
                "SKIPPED: PostgreSQL tests (no initdb found; `apt-get install postgresql` to run them)"
            );
            return None;
        };
        let user = is_root().then(|| "postgres".to_string());
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = dir.join("data");
        if let Some(u) = &user {
            let ok = Command::new("chown")
                .args(["-R", &format!("{u}:{u}"), &dir.display().to_string()])
                .status()
                .expect("chown")
                .success();
            assert!(ok, "cannot hand {} to {u}", dir.display());
        }
        let port = super::gateway::free_port();
        let c = Cluster {
            bin,
            port,
            user,
            next_db: AtomicUsize::new(0),
        };
        c.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "switchboard",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        // Durability is the database's business, not what these tests check: a cluster in a temp
        // dir needs no fsync. Connections: several gateways' pools and the tests' own.
        let opts = format!(
            "-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200",
            sock = dir.display()
        );
        c.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-o",
                &opts,
                "-l",
                &dir.join("log").display().to_string(),
                "-w",
                "start",
            ],
        );
        c.stop_when_done(&dir, &data);
        eprintln!(
            "PostgreSQL test cluster on 127.0.0.1:{port} ({})",
            dir.display()
        );
        Some(c)
    }

    /// Runs one of PostgreSQL's programs, as the cluster's user; panics with its output if it
    /// fails.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A process that outlives nothing: once this test process is gone it stops the cluster
    /// and removes its files.
    fn stop_when_done(&self, dir: &Path, data: &Path) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match &self.user {
            Some(u) => format!(
                "runuser -u {u} -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                data.display()
            ),
            None => format!(
                "{} -D {} -m immediate stop",
                pg_ctl.display(),
                data.display()
            ),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = dir.display()
        );
        // Never waited for: it outlives this process by design (and is reaped by init).
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the cluster's watcher");
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "switchboard", &name],
        );
        format!("postgres://switchboard@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` in database `url` with `psql`; its output (unaligned, tuples only).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A fresh PostgreSQL database's URL, or `None` when PostgreSQL tests are skipped here.
pub fn database() -> Option<String> {
    Cluster::shared().map(Cluster::database)
}
