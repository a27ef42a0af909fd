//! `switchboard doctor [--fix] [--online]`: checks what usually goes wrong, one line each, with
//! what to do. `--fix` removes stored rows that point at agents, channels or models the config
//! no longer has (after a backup); `--online` makes one authenticated call per service.

mod listen;
mod online;
mod orphans;

use crate::config::{Config, ProviderKind};
use crate::gateway::client::Client;
use crate::store::Store;
use std::path::Path;

pub(super) struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: impl AsRef<str>) {
        println!("✓ {what}: {}", detail.as_ref());
    }
    fn warn(&self, what: &str, detail: impl AsRef<str>) {
        println!("! {what}: {}", detail.as_ref());
    }
    fn bad(&mut self, what: &str, detail: impl AsRef<str>) {
        self.problems += 1;
        println!("✗ {what}: {}", detail.as_ref());
    }
}

/// Prints the checks; returns how many problems were found (after `fix`, those left).
pub async fn run(path: &Path, fix: bool, online: bool) -> anyhow::Result<usize> {
    let mut r = Report { problems: 0 };
    let c = match Config::load(path) {
        Ok(c) => {
            r.ok("config", format!("{} is valid", path.display()));
            c
        }
        Err(e) => {
            r.bad("config", e.to_string());
            return Ok(r.problems);
        }
    };
    let state = c.state_dir();
    match Store::for_config(&c) {
        Ok(store) => {
            r.ok(
                "state",
                format!("{} (database opens, schema up to date)", state.display()),
            );
            match store.cron_health().await {
                Ok(h) => {
                    let next = h
                        .next_wake
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map_or("none".into(), |t| t.with_timezone(&c.tz()).to_rfc2822());
                    let last = h.last_run.map_or("none".into(), |(t, s)| {
                        chrono::DateTime::from_timestamp_millis(t).map_or(s.clone(), |t| {
                            format!("{} ({s})", t.with_timezone(&c.tz()).to_rfc2822())
                        })
                    });
                    r.ok(
                        "cron",
                        format!("{} jobs; next wake-up {next}; last run {last}", h.jobs),
                    );
                }
                Err(e) => r.bad("cron", e.to_string()),
            }
            check_orphans(&c, path, &store, fix, &mut r).await?;
        }
        Err(e) => r.bad("state", format!("{}: {e}", state.display())),
    }
    let ip = c.listen_ip();
    if !ip.is_loopback() && c.gateway.token.is_none() {
        r.bad(
            "gateway bind",
            format!(
                "{} without gateway.token: the gateway will refuse to start; set a token",
                c.gateway.bind
            ),
        );
    } else {
        r.ok(
            "gateway bind",
            format!("{} port {}", c.gateway.bind, c.gateway.port),
        );
    }
    let client = Client::from_config(&c);
    let live = match client.status().await {
        Ok(s) => {
            r.ok(
                "gateway",
                format!(
                    "up at {} (pid {}, channels: {})",
                    client.url(),
                    s.pid,
                    s.channels.join(", ")
                ),
            );
            Some(s)
        }
        Err(e) => {
            let pid = crate::service::pidfile::live(&state);
            if pid.is_none() {
                r.warn("gateway", e.to_string().lines().next().unwrap_or_default());
            }
            None
        }
    };
    let pid = live
        .as_ref()
        .map(|s| s.pid)
        .or_else(|| crate::service::pidfile::live(&state));
    if let Some(pid) = pid {
        check_listening(&c, pid, live.is_some(), client.url(), &mut r);
    }
    let live_state = |name: &str| {
        live.as_ref()?
            .channel_health
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.health.clone())
    };
    for (name, token) in [
        (
            "telegram",
            c.channels.telegram.as_ref().map(|t| t.token.is_some()),
        ),
        (
            "discord",
            c.channels.discord.as_ref().map(|d| d.token.is_some()),
        ),
    ] {
        use switchboard_channel::ChannelState;
        match (token, live_state(name)) {
            (Some(true), Some(h)) if h.state == ChannelState::Stopped => {
                r.bad(name, format!("stopped: {}", h.error.unwrap_or_default()))
            }
            (Some(true), Some(h)) if h.state == ChannelState::Retrying => {
                r.warn(name, format!("retrying: {}", h.error.unwrap_or_default()))
            }
            (Some(true), Some(h)) if h.state == ChannelState::Starting => {
                r.ok(name, "token set, connecting")
            }
            (Some(true), Some(_)) => r.ok(name, "token set, connected"),
            (Some(true), None) => r.ok(name, "token set"),
            (Some(false), _) => r.warn(
                name,
                format!("no token: channel disabled (set channels.{name}.token)"),
            ),
            (None, _) => r.ok(name, "not configured"),
        }
    }
    for (name, p) in used_providers(&c) {
        let local = p
            .base_url
            .as_deref()
            .is_some_and(|u| u.contains("127.0.0.1") || u.contains("localhost"));
        match (p.api_key.is_some(), p.kind_for(name), local) {
            (true, _, _) => r.ok(&format!("provider {name}"), "API key set"),
            (false, ProviderKind::Openai, true) => {
                r.ok(&format!("provider {name}"), "local endpoint, no key needed")
            }
            (false, _, _) => r.bad(
                &format!("provider {name}"),
                format!(
                    "no API key: set providers.{name}.apiKey (e.g. \"${{{}_API_KEY}}\")",
                    name.to_uppercase()
                ),
            ),
        }
    }
    if c.voice.enabled {
        let (model, named) = c.voice_model();
        if model.exists() {
            r.ok("voice model", model.display().to_string());
        } else if let Some(k) = named {
            r.ok(
                "voice model",
                format!(
                    "{} ({}) is fetched on the first voice note (or now: switchboard models download {})",
                    k.name,
                    crate::voice::models::mb(k.bytes),
                    k.name
                ),
            );
        } else {
            r.warn(
                "voice model",
                format!(
                    "{} is missing: voice notes cannot be transcribed",
                    model.display()
                ),
            );
        }
    }
    if c.tools.exec.enabled {
        use crate::tools::exec::Confinement;
        match Confinement::of(&c.tools.exec) {
            Confinement::Bwrap => r.ok("exec sandbox", Confinement::Bwrap.describe()),
            Confinement::None if c.tools.exec.sandbox == crate::config::Sandbox::None => {
                r.warn("exec sandbox", Confinement::None.describe())
            }
            Confinement::None => r.warn(
                "exec sandbox",
                format!(
                    "{} — install bubblewrap (`apt install bubblewrap`) to confine it",
                    Confinement::None.describe()
                ),
            ),
            u @ Confinement::Unavailable(_) => r.bad("exec sandbox", u.describe()),
        }
    }
    for (name, s) in &c.mcp.servers {
        if !s.enabled {
            r.ok(&format!("mcp {name}"), "disabled");
        } else if let Some(cmd) = &s.command
            && !cmd.contains('/')
            && !on_path(cmd)
        {
            r.bad(
                &format!("mcp {name}"),
                format!("`{cmd}` is not on PATH: the server cannot start"),
            );
        } else {
            r.ok(
                &format!("mcp {name}"),
                "configured (`switchboard mcp test` starts it)",
            );
        }
    }
    if fix {
        // A running gateway's scheduler sleeps until its next slot: tell it the jobs changed.
        let _ = client.cron_changed().await;
    }
    if online {
        online::check(&c, &mut r).await;
    }
    if r.problems == 0 {
        println!("no problems found");
    }
    Ok(r.problems)
}

/// Where the gateway listens (read from the system) and whether this process can reach it.
fn check_listening(c: &Config, pid: u32, answered: bool, url: &str, r: &mut Report) {
    let addrs = listen::listening(pid, c.gateway.port);
    let shown = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let loopback_only = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
    let same = listen::same_namespace(pid);
    if same == Some(false) && loopback_only {
        r.bad(
            "gateway reachability",
            format!(
                "the gateway (pid {pid}) runs in another network namespace and listens only on {shown}: \
                 nothing outside its namespace (this shell, a container) can reach it, so CLI commands here time out. \
                 Bind it where they can: `switchboard config set gateway.bind lan` with a gateway.token set, then restart it"
            ),
        );
        return;
    }
    if addrs.is_empty() {
        if !answered {
            r.bad(
                "gateway reachability",
                format!("a gateway runs (pid {pid}) but listens on no port {} that this machine shows, and {url} does not answer", c.gateway.port),
            );
        }
        return;
    }
    let scope = if loopback_only {
        "loopback only: reachable from this machine's own network namespace"
    } else {
        "reachable from other hosts and namespaces (token required)"
    };
    if answered {
        r.ok("gateway listens", format!("{shown} ({scope})"));
    } else {
        r.bad(
            "gateway reachability",
            format!("the gateway (pid {pid}) listens on {shown} ({scope}) but {url} does not answer from here"),
        );
    }
}

/// Rows left pointing at what the config no longer has; removed with `--fix` after a backup.
async fn check_orphans(
    c: &Config,
    path: &Path,
    store: &Store,
    fix: bool,
    r: &mut Report,
) -> anyhow::Result<()> {
    let found = orphans::find(c, store).await?;
    if found.is_empty() {
        r.ok(
            "references",
            "cron jobs, chat choices and sessions all point at existing agents and channels",
        );
        return Ok(());
    }
    if !fix {
        for o in &found {
            r.bad(
                "orphaned",
                format!("{} (`switchboard doctor --fix` removes it)", o.what),
            );
        }
        return Ok(());
    }
    let backup = crate::backup::create(c, path, "doctor --fix")
        .await
        .map_err(|e| anyhow::anyhow!("{e}; nothing was fixed"))?;
    orphans::fix(store, &found).await?;
    for o in &found {
        r.ok("fixed", format!("removed {}", o.what));
    }
    r.ok("backup", format!("taken first, in {}", backup.display()));
    Ok(())
}

/// The providers some model role or fallback names (the others are not checked).
fn used_providers(c: &Config) -> impl Iterator<Item = (&String, &crate::config::ProviderConfig)> {
    let used: Vec<&String> = c
        .models
        .roles
        .values()
        .chain(c.models.fallbacks.iter())
        .collect();
    c.providers
        .iter()
        .filter(move |(name, _)| used.iter().any(|m| m.starts_with(&format!("{name}/"))))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}
