//! `switchboard mcp list | test NAME`: through the running gateway's API when it is up (its live
//! state), else from the config, starting a server once for `test`.

use super::UsageError;
use crate::config::Config;
use crate::gateway::client::{Client, ClientError};
use crate::tools::mcp::{self, ServerInfo, Status};

pub async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let (servers, live) = match Client::from_config(config).mcp_list().await {
        Ok(s) => (s, true),
        Err(ClientError::Unreachable { .. }) => (offline(config), false),
        Err(e) => return Err(e.into()),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "gateway": live, "servers": servers })
            )?
        );
        return Ok(());
    }
    if servers.is_empty() {
        println!("no MCP servers configured (add them under `mcp.servers`)");
        return Ok(());
    }
    if !live {
        println!(
            "(the gateway is not running: configured servers; `switchboard mcp test NAME` starts one)"
        );
    }
    for s in &servers {
        print_server(s, live);
    }
    Ok(())
}

fn print_server(s: &ServerInfo, live: bool) {
    let status = if live {
        format!("{:?}", s.status).to_lowercase()
    } else if s.status == Status::Disabled {
        "disabled".into()
    } else {
        "not running".into()
    };
    let mut line = format!("{}  [{}] {}", s.name, s.transport, status);
    if let Some(ms) = s.start_ms {
        line.push_str(&format!(", started in {ms} ms"));
    }
    if s.restarts > 0 {
        line.push_str(&format!(", {} restarts", s.restarts));
    }
    println!("{line}");
    if !s.tools.is_empty() {
        println!("    tools: {}", s.tools.join(", "));
    }
    if let Some(e) = &s.last_error {
        println!("    last error: {e}");
    }
}

/// The configured servers, as `list` shows them with no gateway.
fn offline(config: &Config) -> Vec<ServerInfo> {
    config
        .mcp
        .servers
        .iter()
        .map(|(name, cfg)| ServerInfo {
            name: name.clone(),
            transport: mcp::transport(cfg).into(),
            status: if cfg.enabled {
                Status::Stopped
            } else {
                Status::Disabled
            },
            tools: Vec::new(),
            last_error: None,
            restarts: 0,
            start_ms: None,
        })
        .collect()
}

pub async fn test(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let Some(cfg) = config.mcp.servers.get(name) else {
        let names: Vec<&String> = config.mcp.servers.keys().collect();
        return Err(UsageError(format!(
            "no MCP server named `{name}` (configured: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
        .into());
    };
    let info = match Client::from_config(config).mcp_test(name).await {
        Ok(info) => info,
        Err(ClientError::Unreachable { .. }) => match mcp::probe(name, cfg).await {
            Ok((tools, ms)) => ServerInfo {
                name: name.to_string(),
                transport: mcp::transport(cfg).into(),
                status: Status::Ready,
                tools,
                last_error: None,
                restarts: 0,
                start_ms: Some(ms),
            },
            Err(e) => anyhow::bail!("MCP server `{name}` failed: {e}"),
        },
        Err(e) => anyhow::bail!("MCP server `{name}` failed: {e}"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("ok: `{name}` answers with {} tools", info.tools.len());
        print_server(&info, true);
    }
    Ok(())
}
