//! One task per MCP server: start it, list its tools, follow `tools/list_changed`, and when it
//! exits start it again after a backoff (1 s doubling to 60 s; back to 1 s once a run lasted a
//! minute). Shutdown cancels the task, which closes the session and stops the child.

use super::{Server, Servers, Status};
use crate::config::McpServerConfig;
use rmcp::model::{ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

/// Longest a server may take from spawn (or connect) to its tool list.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Lines of a child's stderr kept for the error shown when it fails.
const STDERR_LINES: usize = 8;

/// Our side of the session: the SDK's defaults, our name, and a nudge when tools change.
#[derive(Clone)]
struct Handler {
    server: Weak<Server>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("switchboard", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        if let Some(s) = self.server.upgrade() {
            s.refresh.notify_one();
        }
    }
}

type Session = RunningService<RoleClient, Handler>;

/// The last lines a child wrote to stderr (shared with the task reading them).
type StderrTail = Arc<parking_lot::Mutex<VecDeque<String>>>;

/// Starts the server and completes the MCP handshake.
async fn connect(
    name: &str,
    cfg: &McpServerConfig,
    handler: Handler,
    stderr_tail: &StderrTail,
) -> Result<Session, String> {
    if let Some(url) = &cfg.url {
        let mut headers = std::collections::HashMap::new();
        for (k, v) in &cfg.headers {
            let k = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header name `{k}` is not valid"))?;
            let v = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header `{k}` is not valid"))?;
            headers.insert(k, v);
        }
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                url.as_str(),
            )
            .custom_headers(headers);
        let transport = StreamableHttpClientTransport::from_config(config);
        return handler
            .serve(transport)
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"));
    }
    let Some(program) = cfg.command.as_deref() else {
        return Err("neither `command` nor `url` is set".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&cfg.args).env_clear();
    // Only what the config gives it, plus PATH and HOME: never our tokens and keys.
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(&cfg.env);
    if let Some(cwd) = &cfg.cwd {
        cmd.current_dir(crate::config::expand_home(cwd));
    }
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    if let Some(stderr) = stderr {
        let tail = stderr_tail.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(server = %name, "mcp stderr: {line}");
                let mut t = tail.lock();
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
    }
    handler.serve(transport).await.map_err(|e| {
        let tail = last_stderr(stderr_tail);
        format!("`{program}` did not complete the MCP handshake: {e}{tail}")
    })
}

fn last_stderr(tail: &StderrTail) -> String {
    let t = tail.lock();
    match t.iter().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(" (stderr: {})", l.trim()),
        None => String::new(),
    }
}

/// Supervises `server` until shutdown.
pub(super) async fn supervise(
    server: Arc<Server>,
    servers: Weak<Servers>,
    shutdown: CancellationToken,
) {
    let name = server.name.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let tail: StderrTail = Default::default();
        let handler = Handler {
            server: Arc::downgrade(&server),
        };
        let attempt = async {
            let session = connect(&name, &server.cfg, handler, &tail).await?;
            let tools = session
                .peer()
                .list_all_tools()
                .await
                .map_err(|e| format!("tools/list failed: {e}"))?;
            Ok::<_, String>((session, tools))
        };
        let result = tokio::select! {
            _ = shutdown.cancelled() => return set(&server, &servers, Status::Stopped, None),
            r = tokio::time::timeout(START_TIMEOUT, attempt) => r
                .unwrap_or_else(|_| Err(format!("did not start within {}s", START_TIMEOUT.as_secs()))),
        };
        match result {
            Ok((session, tools)) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(server = %name, tools = tools.len(), ms, "MCP server ready");
                {
                    let mut st = server.state.lock();
                    st.status = Status::Ready;
                    st.peer = Some(session.peer().clone());
                    st.tools = tools;
                    st.last_error = None;
                    st.start_ms = Some(ms);
                }
                reindex(&servers);
                let why = run(&server, &servers, session, &shutdown).await;
                if shutdown.is_cancelled() {
                    return set(&server, &servers, Status::Stopped, None);
                }
                let why = format!("{why}{}", last_stderr(&tail));
                tracing::warn!(server = %name, error = %why, "MCP server stopped; restarting");
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                set(&server, &servers, Status::Restarting, Some(why));
            }
            Err(e) => {
                tracing::warn!(server = %name, error = %e, retry_in = backoff.as_secs(), "MCP server failed to start");
                set(&server, &servers, Status::Restarting, Some(e));
            }
        }
        server.state.lock().restarts += 1;
        tokio::select! {
            _ = shutdown.cancelled() => return set(&server, &servers, Status::Stopped, None),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Serves a started session: refreshes the tools when told to, returns why it ended.
async fn run(
    server: &Arc<Server>,
    servers: &Weak<Servers>,
    session: Session,
    shutdown: &CancellationToken,
) -> String {
    let peer = session.peer().clone();
    let wait = session.waiting();
    tokio::pin!(wait);
    loop {
        tokio::select! {
            r = &mut wait => {
                return match r {
                    Ok(reason) => format!("the session ended ({reason:?})"),
                    Err(e) => format!("the session task failed: {e}"),
                };
            }
            _ = server.refresh.notified() => {
                match tokio::time::timeout(START_TIMEOUT, peer.list_all_tools()).await {
                    Ok(Ok(tools)) => {
                        tracing::info!(server = %server.name, tools = tools.len(), "MCP tools changed");
                        server.state.lock().tools = tools;
                        reindex(servers);
                    }
                    Ok(Err(e)) => tracing::warn!(server = %server.name, error = %e, "cannot list changed tools"),
                    Err(_) => tracing::warn!(server = %server.name, "tools/list timed out"),
                }
            }
            // Dropping the session on return closes it and stops the child.
            _ = shutdown.cancelled() => return "shutdown".into(),
        }
    }
}

fn set(server: &Server, servers: &Weak<Servers>, status: Status, error: Option<String>) {
    {
        let mut st = server.state.lock();
        st.status = status;
        st.peer = None;
        if error.is_some() {
            st.last_error = error;
        }
    }
    reindex(servers);
}

fn reindex(servers: &Weak<Servers>) {
    if let Some(s) = servers.upgrade() {
        s.reindex();
    }
}

/// Starts `cfg` once, lists its tools and stops it (`mcp test` with no gateway running).
pub async fn probe(name: &str, cfg: &McpServerConfig) -> Result<(Vec<String>, u64), String> {
    super::install_crypto();
    let started = Instant::now();
    let tail: StderrTail = Default::default();
    let attempt = async {
        let session = connect(
            name,
            cfg,
            Handler {
                server: Weak::new(),
            },
            &tail,
        )
        .await?;
        let tools = session
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        let _ = session.cancel().await;
        Ok::<_, String>(tools)
    };
    let tools = tokio::time::timeout(START_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("did not start within {}s", START_TIMEOUT.as_secs()))??;
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    Ok((names, started.elapsed().as_millis() as u64))
}
