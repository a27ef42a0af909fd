//! Real MCP servers for the tests: `mcp-server-time` (PyPI) and
//! `@modelcontextprotocol/server-everything` (npm), installed by `.ci/run`. Outside CI a missing
//! one skips its test with a loud message; in CI it fails the test.

use std::process::Stdio;
use std::time::Duration;

/// Whether `program` is on PATH; if not, says so loudly (and fails under `CI=true`).
pub fn available(program: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if !found {
        let msg = format!(
            "\n!!!!!!!! SKIPPING {test}: `{program}` is not installed \
             (pip install mcp-server-time; npm install -g @modelcontextprotocol/server-everything)\n"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}(CI installs it: this is a broken CI setup)");
        }
        eprintln!("{msg}");
    }
    found
}

/// `server-everything` in its streamable HTTP mode on `port`, stopped when dropped.
pub struct HttpEverything {
    child: tokio::process::Child,
    pub url: String,
}

impl HttpEverything {
    pub async fn start(port: u16) -> HttpEverything {
        let child = tokio::process::Command::new("mcp-server-everything")
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start mcp-server-everything streamableHttp");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        HttpEverything {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The pids of the direct children of `pid` whose command line contains `needle`.
pub fn children_of(pid: u32, needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        if ppid == Some(pid) && String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(child);
        }
    }
    out
}
