//! Runs the real `switchboard` binary as a gateway on a free loopback port, with a config that
//! points its providers at a [`FakeModel`], and drives it through its CLI and HTTP API.

use super::fake_model::FakeModel;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

pub struct TestGateway {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    pub url: String,
    child: Option<Child>,
    /// When the current process was spawned (benchmarks time start-up from it).
    pub spawned_at: Option<std::time::Instant>,
    http: reqwest::Client,
}

/// `LD_LIBRARY_PATH` as a user's shell would hand it to the gateway: without the directories
/// cargo adds under its target dir when it runs tests and benches (whisper's build script
/// names 27 of them, and the dynamic loader then probes each, in four hardware-capability
/// variants, for every shared library before it finds the system's: thousands of failed
/// `openat`s that made every test gateway start tens of ms late). `None` when nothing is left.
pub fn user_library_path() -> Option<std::ffi::OsString> {
    let target = Path::new(BIN).parent()?.parent()?.to_path_buf();
    let kept: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("LD_LIBRARY_PATH")?)
        .filter(|p| !p.starts_with(&target))
        .collect();
    if kept.is_empty() {
        return None;
    }
    std::env::join_paths(kept).ok()
}

/// A free port on 127.0.0.1 (bound and released; the gateway binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The store the test gateways use: SQLite, unless `SWITCHBOARD_TEST_STORE=postgres` asks for
/// a fresh PostgreSQL database each (how the core end-to-end tests run a second time on
/// PostgreSQL). A `store` key in the test's own config wins.
fn store_key(extra: &str) -> String {
    if extra.contains("store:")
        || std::env::var("SWITCHBOARD_TEST_STORE").as_deref() != Ok("postgres")
    {
        return String::new();
    }
    let url = super::postgres::database()
        .expect("SWITCHBOARD_TEST_STORE=postgres needs PostgreSQL installed");
    format!("store: {{ url: \"{url}\" }},")
}

/// The standard test config: Anthropic- and OpenAI-format providers on the fake, jarvis as
/// coordinator on the Anthropic one, clu on the OpenAI one. `extra` adds top-level keys.
pub fn config_text(model_url: &str, port: u16, state: &Path, extra: &str) -> String {
    let store = store_key(extra);
    format!(
        r#"// test config
{{
  stateDir: "{state}",
  timezone: "Europe/London",
  gateway: {{ port: {port} }},
  providers: {{
    anthropic: {{ apiKey: "sk-ant-test-SECRET", baseUrl: "{model_url}" }},
    openai: {{ kind: "openai", apiKey: "sk-oai-test-SECRET", baseUrl: "{model_url}/v1" }},
  }},
  models: {{ default: "anthropic/claude-test", coding: "openai/gpt-test" }},
  agents: {{ jarvis: {{ coordinator: true }}, clu: {{ model: "coding" }} }},
  workers: {{ maxConcurrent: 2, timeoutSeconds: 30 }},
  {store}
  {extra}
}}
"#,
        state = state.display()
    )
}

/// `config` (from [`config_text`] for `port`) with `gateway.token` set to `token`.
pub fn with_token(config: &str, port: u16, token: &str) -> String {
    config.replace(
        &format!("gateway: {{ port: {port} }}"),
        &format!("gateway: {{ port: {port}, token: \"{token}\" }}"),
    )
}

impl TestGateway {
    /// Writes the standard config (plus `extra`) and starts the gateway.
    pub async fn start(model: &FakeModel, extra: &str) -> TestGateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let text = config_text(&model.url, port, &dir.path().join("state"), extra);
        Self::start_in(dir, port, &text).await
    }

    pub async fn start_in(dir: tempfile::TempDir, port: u16, config_text: &str) -> TestGateway {
        let config = dir.path().join("config.json5");
        std::fs::write(&config, config_text).expect("write config");
        let mut g = TestGateway {
            dir,
            config,
            port,
            url: format!("http://127.0.0.1:{port}"),
            child: None,
            spawned_at: None,
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .expect("client"),
        };
        g.restart().await;
        g
    }

    /// Whether the process is still running (it has not exited on its own).
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The gateway's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the gateway process (again) and waits until `/health` answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "gateway already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        // A bench may compare against another build (e.g. the previous release).
        let bin = std::env::var("SWITCHBOARD_TEST_BIN").unwrap_or_else(|_| BIN.to_string());
        self.spawned_at = Some(std::time::Instant::now());
        let mut cmd = Command::new(bin);
        match user_library_path() {
            Some(p) => cmd.env("LD_LIBRARY_PATH", p),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
        // Benchmarks run on the system clock, as a real gateway does (the test clock makes the
        // scheduler look at it every second).
        if std::env::var_os("SWITCHBOARD_TEST_SYSTEM_CLOCK").is_none() {
            cmd.env("SWITCHBOARD_TEST_CLOCK", self.clock_path());
        }
        let child = cmd
            .args(["gateway", "--config"])
            .arg(&self.config)
            .env(
                "RUST_LOG",
                std::env::var("SWITCHBOARD_TEST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn gateway");
        self.child = Some(child);
        // Five seconds, unless a bench runs the gateway under a slow tracer (valgrind).
        let tries = std::env::var("SWITCHBOARD_TEST_START_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(200, |s| s * 40);
        for _ in 0..tries {
            if self
                .http
                .get(format!("{}/health", self.url))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("gateway exited with {status}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway did not come up:\n{}", self.log());
    }

    /// Sends `signal` (`TERM`, `KILL`, `INT`) and waits for the process to exit.
    pub async fn stop(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("gateway running");
        let pid = child.id().expect("pid");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("gateway exits after signal")
            .expect("wait")
    }

    /// Runs the CLI with this config (and this gateway's clock).
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "").await
    }

    pub async fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_cli_env(
            &self.config,
            args,
            stdin,
            &[("SWITCHBOARD_TEST_CLOCK", &self.clock_path())],
        )
        .await
    }

    /// The file the gateway and the CLI read the time from (system time while it does not exist).
    pub fn clock_path(&self) -> PathBuf {
        self.dir.path().join("clock")
    }

    /// Sets the time the scheduler sees (RFC 3339).
    pub fn set_clock(&self, rfc3339: &str) {
        std::fs::write(self.clock_path(), rfc3339).expect("write clock");
    }

    /// Sends `text` to local chat `chat` over the HTTP API and returns the reply.
    pub async fn chat(&self, chat: &str, text: &str) -> String {
        let v: Value = self
            .http
            .post(format!("{}/v1/chat", self.url))
            .json(&serde_json::json!({ "chat": chat, "text": text }))
            .send()
            .await
            .expect("chat request")
            .json()
            .await
            .expect("chat json");
        v["reply"]
            .as_str()
            .unwrap_or_else(|| panic!("no reply in {v}"))
            .to_string()
    }

    /// Every message delivered to local chat `chat` so far (waiting up to `wait_secs` for one).
    pub async fn messages(&self, chat: &str, wait_secs: u64) -> Vec<String> {
        let v: Value = self
            .http
            .get(format!(
                "{}/v1/local/{chat}/messages?after=0&wait={wait_secs}",
                self.url
            ))
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("poll json");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .collect()
    }

    /// Polls until `pred` holds for the messages of `chat` (bounded).
    pub async fn wait_messages(&self, chat: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        for _ in 0..100 {
            let m = self.messages(chat, 0).await;
            if pred(&m) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "messages of {chat} never matched: {:?}\n{}",
            self.messages(chat, 0).await,
            self.log()
        );
    }

    /// The PostgreSQL database this gateway's config names, if any.
    pub fn store_url(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.config).ok()?;
        let start = text.find("postgres://")?;
        let end = text[start..].find('"')? + start;
        Some(text[start..end].to_string())
    }

    /// `SELECT count(*) …` on the gateway's store, whichever backend it is.
    pub fn count(&self, sql: &str) -> i64 {
        self.try_count(sql)
            .unwrap_or_else(|| panic!("{sql} failed\n{}", self.log()))
    }

    /// [`TestGateway::count`], `None` when the query failed (the database was busy).
    pub fn try_count(&self, sql: &str) -> Option<i64> {
        match self.store_url() {
            Some(url) => super::postgres::Cluster::shared()?
                .psql(&url, sql)
                .parse()
                .ok(),
            None => self.db().query_row(sql, [], |r| r.get(0)).ok(),
        }
    }

    /// The gateway's database, opened read-only next to the running gateway.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.dir.path().join("state/switchboard.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db")
    }

    pub fn workspace(&self, agent: &str) -> PathBuf {
        self.dir.path().join("state/agents").join(agent)
    }
}

pub async fn run_cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    run_cli_env(config, args, stdin, &[]).await
}

pub async fn run_cli_env(
    config: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &Path)],
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(BIN);
    match user_library_path() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SWITCHBOARD_GATEWAY_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn cli");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("cli finishes")
        .expect("cli output")
}

/// One number from a database file (a backup, a stopped gateway's state).
pub fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .expect("open db")
        .query_row(sql, [], |r| r.get(0))
        .expect("query")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
