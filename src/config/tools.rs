//! The keys of `tools`, `mcp` and `agents.NAME.tools`: what agents can call and who decides.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolsConfig {
    #[serde(default)]
    pub exec: ExecConfig,
    #[serde(default)]
    pub web: WebConfig,
    /// Tools that ask the chat before they run (globs: `exec`, `mcp:notes/*`, `web_*`).
    /// Default: `["exec"]`; `[]` lets every allowed tool run unasked.
    #[serde(default = "default_approve")]
    pub approve: Vec<String>,
    /// How long a request waits for an answer before it counts as a denial.
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_seconds: u64,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            exec: ExecConfig::default(),
            web: WebConfig::default(),
            approve: default_approve(),
            approval_timeout_seconds: default_approval_timeout(),
        }
    }
}

fn default_approve() -> Vec<String> {
    vec!["exec".into()]
}

fn default_approval_timeout() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Program names (or absolute paths) the agent may run.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default = "default_exec_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub sandbox: Sandbox,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow: Vec::new(),
            timeout_seconds: default_exec_timeout(),
            sandbox: Sandbox::Auto,
        }
    }
}

/// How `exec` is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sandbox {
    /// bubblewrap when `bwrap` is installed, else unconfined.
    #[default]
    Auto,
    /// bubblewrap or refuse to run.
    Bwrap,
    None,
}

fn default_exec_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebConfig {
    /// Offer `web_fetch`.
    #[serde(default = "super::types::yes")]
    pub fetch: bool,
    /// `web_search`, when a provider is configured.
    #[serde(default)]
    pub search: Option<SearchConfig>,
    /// Let the web tools reach loopback, private and link-local addresses (off: an agent cannot
    /// be talked into fetching the owner's LAN).
    #[serde(default)]
    pub allow_private: bool,
    /// Largest response body read, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    #[serde(default = "default_web_timeout")]
    pub timeout_seconds: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            fetch: true,
            search: None,
            allow_private: false,
            max_bytes: default_max_bytes(),
            timeout_seconds: default_web_timeout(),
        }
    }
}

fn default_max_bytes() -> usize {
    5 * 1024 * 1024
}

fn default_web_timeout() -> u64 {
    20
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchConfig {
    pub provider: SearchProvider,
    /// Brave's subscription token (`${BRAVE_API_KEY:-}`); empty disables search.
    #[serde(default, deserialize_with = "super::types::empty_as_none")]
    pub api_key: Option<String>,
    /// Default: Brave's public API; required for SearXNG (your instance).
    #[serde(default)]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchProvider {
    Brave,
    Searxng,
}

/// `agents.NAME.tools`: globs over tool names (`exec`, `web_*`, `mcp:time/*`). Empty `allow`
/// means every tool; `deny` wins.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentTools {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpConfig {
    #[serde(default)]
    pub servers: BTreeMap<String, McpServerConfig>,
}

/// One MCP server: a program we start (`command`) or a streamable HTTP endpoint (`url`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpServerConfig {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The child's whole environment besides PATH and HOME: it never inherits ours (our tokens).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "super::types::yes")]
    pub enabled: bool,
    /// Longest a tool call may take.
    #[serde(default = "default_mcp_timeout")]
    pub timeout_seconds: u64,
}

fn default_mcp_timeout() -> u64 {
    60
}
