//! MCP servers (`mcp.servers`): each is supervised by a task of its own (see `supervisor`), its
//! tools offered to agents as `SERVER__TOOL` and called through the official SDK (`rmcp`).
//!
//! Nothing here blocks the gateway: servers start in the background, in parallel, and a server
//! that is slow, broken or gone only makes its own tools answer with an error saying so.

mod convert;
mod names;
mod supervisor;

use crate::config::{McpConfig, McpServerConfig};
use crate::providers::ToolSpec;
use crate::tools::ToolOutput;
use parking_lot::Mutex;
use rmcp::RoleClient;
use rmcp::service::Peer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use supervisor::probe;

/// One MCP tool as agents see it.
#[derive(Debug, Clone)]
pub struct McpTool {
    pub server: String,
    /// The name the server gave it.
    pub name: String,
    /// `SERVER__TOOL`, sanitised to the providers' rules (what the model calls).
    pub exposed: String,
    pub spec: ToolSpec,
}

impl McpTool {
    /// `mcp:SERVER/TOOL`, the name allow/deny/approve globs match besides `exposed`.
    pub fn qualified(&self) -> String {
        format!("mcp:{}/{}", self.server, self.name)
    }
}

/// What a tool name refers to.
pub enum Lookup {
    Tool(McpTool),
    /// `SERVER__…` of a configured server whose tools are not known (it never started).
    ServerDown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Starting,
    Ready,
    /// Exited or failed; restarting after a backoff.
    Restarting,
    Disabled,
    Stopped,
}

/// A server's state, as `mcp list` and the API show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    /// `stdio` or `http`.
    pub transport: String,
    pub status: Status,
    pub tools: Vec<String>,
    pub last_error: Option<String>,
    pub restarts: u32,
    /// Milliseconds the last successful start took (spawn or connect, initialize, tools/list).
    pub start_ms: Option<u64>,
}

struct Server {
    name: String,
    cfg: McpServerConfig,
    state: Mutex<State>,
    /// Signalled by `notifications/tools/list_changed`.
    refresh: tokio::sync::Notify,
}

struct State {
    status: Status,
    peer: Option<Peer<RoleClient>>,
    /// The last tools listed (kept while the server restarts, so a call gets a clear error).
    tools: Vec<rmcp::model::Tool>,
    last_error: Option<String>,
    restarts: u32,
    start_ms: Option<u64>,
}

/// Every configured MCP server.
pub struct Servers {
    servers: BTreeMap<String, Arc<Server>>,
    /// Exposed name → tool, rebuilt whenever a server's tool list changes.
    index: Mutex<Arc<BTreeMap<String, McpTool>>>,
}

impl Servers {
    /// No servers (tests, CLI paths that run no gateway).
    pub fn none() -> Arc<Servers> {
        Arc::new(Servers {
            servers: BTreeMap::new(),
            index: Mutex::new(Arc::default()),
        })
    }

    /// Starts a supervisor for every enabled server and returns at once.
    pub fn start(config: &McpConfig, shutdown: CancellationToken) -> Arc<Servers> {
        if !config.servers.is_empty() {
            install_crypto();
        }
        let servers = config
            .servers
            .iter()
            .map(|(name, cfg)| {
                let server = Arc::new(Server {
                    name: name.clone(),
                    cfg: cfg.clone(),
                    state: Mutex::new(State {
                        status: if cfg.enabled {
                            Status::Starting
                        } else {
                            Status::Disabled
                        },
                        peer: None,
                        tools: Vec::new(),
                        last_error: None,
                        restarts: 0,
                        start_ms: None,
                    }),
                    refresh: tokio::sync::Notify::new(),
                });
                (name.clone(), server)
            })
            .collect();
        let all = Arc::new(Servers {
            servers,
            index: Mutex::new(Arc::default()),
        });
        for server in all.servers.values() {
            if server.cfg.enabled {
                let span = tracing::info_span!("mcp", server = %server.name);
                tokio::spawn(
                    supervisor::supervise(server.clone(), Arc::downgrade(&all), shutdown.clone())
                        .instrument(span),
                );
            }
        }
        all
    }

    /// Waits (at most `limit`) until no server is still making its first start.
    pub async fn first_starts_done(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self
                .servers
                .values()
                .all(|s| s.state.lock().status != Status::Starting)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Every known MCP tool (servers that are up, and those restarting with their last list).
    pub fn tools(&self) -> Vec<McpTool> {
        self.index.lock().values().cloned().collect()
    }

    pub fn lookup(&self, exposed: &str) -> Option<Lookup> {
        if let Some(t) = self.index.lock().get(exposed) {
            return Some(Lookup::Tool(t.clone()));
        }
        let (server, _) = exposed.split_once("__")?;
        self.servers
            .values()
            .find(|s| names::sanitize(&s.name) == server)
            .map(|s| Lookup::ServerDown(s.name.clone()))
    }

    pub fn info(&self) -> Vec<ServerInfo> {
        self.servers.values().map(|s| s.info()).collect()
    }

    /// Why `server` cannot take calls now.
    pub fn down_error(&self, server: &str) -> ToolOutput {
        let why = self
            .servers
            .get(server)
            .map(|s| {
                let st = s.state.lock();
                match (&st.status, &st.last_error) {
                    (Status::Disabled, _) => "it is disabled in the config".to_string(),
                    (Status::Starting, None) => "it is still starting".to_string(),
                    (_, Some(e)) => format!("{e}; it is being restarted"),
                    (_, None) => "it is not running".to_string(),
                }
            })
            .unwrap_or_else(|| "it is not configured".into());
        ToolOutput::error(format!("MCP server `{server}` is unavailable: {why}"))
    }

    /// Calls `tool` with the model's `input`, bounded by the server's timeout.
    pub async fn call(&self, tool: &McpTool, input: &Value) -> ToolOutput {
        let Some(server) = self.servers.get(&tool.server) else {
            return self.down_error(&tool.server);
        };
        let peer = server.state.lock().peer.clone();
        let Some(peer) = peer else {
            return self.down_error(&tool.server);
        };
        let arguments = match input {
            Value::Object(m) => Some(m.clone()),
            Value::Null => None,
            _ => return ToolOutput::error("tool arguments must be a JSON object"),
        };
        let mut params = rmcp::model::CallToolRequestParams::new(tool.name.clone());
        params.arguments = arguments;
        let timeout = Duration::from_secs(server.cfg.timeout_seconds);
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => ToolOutput::error(format!(
                "`{}` did not answer within {}s",
                tool.exposed,
                timeout.as_secs()
            )),
            Ok(Err(e)) => {
                tracing::debug!(server = %tool.server, tool = %tool.name, error = %e, "MCP call failed");
                match e {
                    rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_) => {
                        self.down_error(&tool.server)
                    }
                    e => ToolOutput::error(format!("`{}` failed: {e}", tool.exposed)),
                }
            }
            Ok(Ok(result)) => convert::output(&tool.qualified(), result),
        }
    }

    /// Lists `name`'s tools again from the running server (`mcp test` with the gateway up).
    pub async fn test(&self, name: &str) -> Result<ServerInfo, String> {
        let server = self
            .servers
            .get(name)
            .ok_or_else(|| format!("no MCP server named `{name}`"))?;
        let peer = server.state.lock().peer.clone();
        let peer = peer.ok_or_else(|| {
            let e = self.down_error(name);
            e.text
        })?;
        let tools = tokio::time::timeout(Duration::from_secs(30), peer.list_all_tools())
            .await
            .map_err(|_| "tools/list did not answer within 30s".to_string())?
            .map_err(|e| format!("tools/list failed: {e}"))?;
        server.state.lock().tools = tools;
        self.reindex();
        Ok(server.info())
    }

    /// Rebuilds the exposed-name index from every server's last tool list.
    fn reindex(&self) {
        let mut lists = Vec::new();
        for s in self.servers.values() {
            let st = s.state.lock();
            if st.status != Status::Disabled {
                lists.push((s.name.clone(), st.tools.clone()));
            }
        }
        *self.index.lock() = Arc::new(names::index(&lists));
    }
}

pub fn transport(cfg: &McpServerConfig) -> &'static str {
    if cfg.url.is_some() { "http" } else { "stdio" }
}

/// rmcp's HTTP client is built without a bundled crypto provider: use ring, which the rest of
/// the binary links already.
pub(crate) fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Server {
    fn info(&self) -> ServerInfo {
        let st = self.state.lock();
        let mut tools: Vec<String> = st.tools.iter().map(|t| t.name.to_string()).collect();
        tools.sort();
        ServerInfo {
            name: self.name.clone(),
            transport: transport(&self.cfg).into(),
            status: st.status,
            tools,
            last_error: st.last_error.clone(),
            restarts: st.restarts,
            start_ms: st.start_ms,
        }
    }
}
