//! `switchboard gateway install [--print] | uninstall | start | stop | restart`.
//!
//! With the systemd user unit installed, start/stop/restart go through `systemctl --user`. A
//! gateway started by hand is stopped the same way the unit stops it: SIGTERM to the pid it
//! reports (or its pid file names), which is graceful. `start` without the unit runs the
//! gateway in the background, detached from the terminal.

use super::UsageError;
use crate::config::Config;
use crate::gateway::client::{Client, ClientError};
use crate::service::{pidfile, systemd};
use std::path::Path;
use std::time::Duration;

/// How long a gateway gets to finish its turns when stopped (its own grace is 20 s).
const STOP_WAIT: Duration = Duration::from_secs(30);
const START_WAIT: Duration = Duration::from_secs(15);

/// A gateway running on this config's state.
pub(super) struct Running {
    pub pid: Option<u32>,
    /// Its API answered (else only its pid file and process were found).
    pub reachable: bool,
    pub url: String,
}

/// Finds a gateway on this state: through its API, else through its pid file.
pub(super) async fn running(c: &Config) -> Option<Running> {
    let client = Client::from_config(c);
    let url = client.url().to_string();
    match client.status().await {
        Ok(s) => Some(Running {
            pid: Some(s.pid),
            reachable: true,
            url,
        }),
        // Something answers but not as a gateway we can talk to: treat it as running, to be safe.
        Err(ClientError::Api(_)) => Some(Running {
            pid: pidfile::live(&c.state_dir()),
            reachable: true,
            url,
        }),
        Err(ClientError::Unreachable { .. }) => pidfile::live(&c.state_dir()).map(|pid| Running {
            pid: Some(pid),
            reachable: false,
            url,
        }),
    }
}

pub(super) async fn install(c: &Config, config_path: &Path, print: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("cannot locate this binary: {e}"))?;
    let config_abs = config_path
        .canonicalize()
        .map_err(|e| UsageError(format!("cannot read {}: {e}", config_path.display())))?;
    let vars = Config::env_vars(config_path)?;
    let env_path = systemd::env_file(&c.state_dir());
    let unit = systemd::unit_text(&exe, &config_abs, (!vars.is_empty()).then_some(&*env_path));
    if print {
        print!("{unit}");
        return Ok(());
    }
    if let Some(r) = running(c).await
        && !systemd::installed()
    {
        anyhow::bail!(
            "a gateway started by hand is running on this state (pid {}); stop it first (`switchboard gateway stop`), then install",
            r.pid.map_or("unknown".into(), |p| p.to_string())
        );
    }
    let unit_path = systemd::unit_path();
    std::fs::create_dir_all(systemd::unit_dir())?;
    std::fs::write(&unit_path, &unit)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", unit_path.display()))?;
    println!("wrote {}", unit_path.display());
    if !vars.is_empty() {
        let (set, unset): (Vec<_>, Vec<_>) = vars
            .iter()
            .map(|n| (n.clone(), std::env::var(n).unwrap_or_default()))
            .partition(|(_, v)| !v.is_empty());
        systemd::write_private(&env_path, &systemd::env_text(&set))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", env_path.display()))?;
        println!(
            "wrote {} (mode 0600) with {} of the {} variables the config uses{}",
            env_path.display(),
            set.len(),
            vars.len(),
            if unset.is_empty() {
                String::new()
            } else {
                format!(
                    "; not set here, add them there if needed: {}",
                    unset
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    systemd::systemctl(&["daemon-reload"])?;
    systemd::systemctl(&["enable", "--now", systemd::UNIT])?;
    println!(
        "enabled and started {} (restarts on failure). To keep it running when you are logged out: `loginctl enable-linger $USER`",
        systemd::UNIT
    );
    Ok(())
}

pub(super) async fn uninstall() -> anyhow::Result<()> {
    let unit_path = systemd::unit_path();
    if !unit_path.exists() {
        println!(
            "no {} in {}: nothing to uninstall",
            systemd::UNIT,
            systemd::unit_dir().display()
        );
        return Ok(());
    }
    systemd::systemctl(&["disable", "--now", systemd::UNIT])?;
    std::fs::remove_file(&unit_path)
        .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", unit_path.display()))?;
    systemd::systemctl(&["daemon-reload"])?;
    println!("stopped, disabled and removed {}", unit_path.display());
    Ok(())
}

pub(super) async fn start(c: &Config, config_path: &Path) -> anyhow::Result<()> {
    if systemd::installed() {
        systemd::systemctl(&["start", systemd::UNIT])?;
        println!("started {}", systemd::UNIT);
        return Ok(());
    }
    if let Some(r) = running(c).await {
        println!(
            "a gateway is already running (pid {}, {})",
            r.pid.map_or("unknown".into(), |p| p.to_string()),
            r.url
        );
        return Ok(());
    }
    spawn_detached(c, config_path).await
}

pub(super) async fn stop(c: &Config) -> anyhow::Result<()> {
    let mut stopped = false;
    if systemd::installed() && systemd::active() {
        systemd::systemctl(&["stop", systemd::UNIT])?;
        println!("stopped {}", systemd::UNIT);
        stopped = true;
    }
    if let Some(r) = running(c).await {
        let Some(pid) = r.pid.filter(|p| pidfile::is_gateway(*p)) else {
            anyhow::bail!(
                "something answers at {} but it names no process on this machine; stop it where it runs",
                r.url
            );
        };
        pidfile::terminate(pid).map_err(|e| anyhow::anyhow!("cannot signal pid {pid}: {e}"))?;
        if !pidfile::wait_gone(pid, STOP_WAIT).await {
            anyhow::bail!(
                "the gateway (pid {pid}) is still finishing after {} s; it stops once its turns end",
                STOP_WAIT.as_secs()
            );
        }
        println!("stopped the gateway (pid {pid})");
        stopped = true;
    }
    if !stopped {
        println!("no gateway is running on this state");
    }
    Ok(())
}

pub(super) async fn restart(c: &Config, config_path: &Path) -> anyhow::Result<()> {
    if systemd::installed() {
        systemd::systemctl(&["restart", systemd::UNIT])?;
        println!("restarted {}", systemd::UNIT);
        return Ok(());
    }
    stop(c).await?;
    spawn_detached(c, config_path).await
}

/// Runs `switchboard gateway` in its own session, detached from this terminal, and waits until
/// its API answers (or it exits, when what it printed is shown).
async fn spawn_detached(c: &Config, config_path: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let config_abs = config_path.canonicalize()?;
    let logs = c.state_dir().join("logs");
    std::fs::create_dir_all(&logs)?;
    let err_path = logs.join("gateway.stderr");
    let err = std::fs::File::create(&err_path)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("gateway")
        .arg("--config")
        .arg(&config_abs)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err);
    // SAFETY: setsid only detaches the child from our session and terminal; it is
    // async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let client = Client::from_config(c);
    let deadline = tokio::time::Instant::now() + START_WAIT;
    loop {
        if let Ok(s) = client.status().await {
            println!("started the gateway (pid {}) at {}", s.pid, client.url());
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&err_path).unwrap_or_default();
            let tail: Vec<&str> = said.lines().rev().take(5).collect();
            anyhow::bail!(
                "the gateway exited at start ({status}):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the gateway (pid {}) did not answer at {} within {} s; see {}",
                child.id(),
                client.url(),
                START_WAIT.as_secs(),
                err_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
