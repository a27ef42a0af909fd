//! `switchboard reset --sessions | --crons | --all`: start over, after a backup of the config, the
//! agents' memory files and the database into `<stateDir>/backups/<time>/`.
//!
//! `--sessions` ends every conversation (through a running gateway, which holds them, else in the
//! database); `--crons` removes every job (a running gateway notices within a second); `--all`
//! removes the database and the agents' workspaces, so the next start is a first start with the
//! same config — and is refused while a gateway is running on them.

use crate::config::Config;
use crate::gateway::client::{Client, ClientError};
use crate::store::Store;
use std::path::{Path, PathBuf};

pub(super) struct What {
    pub sessions: bool,
    pub crons: bool,
    pub all: bool,
}

pub(super) async fn reset(c: &Config, config_path: &Path, what: What) -> anyhow::Result<()> {
    if !(what.sessions || what.crons || what.all) {
        return Err(
            super::UsageError("say what to reset: --sessions, --crons or --all".into()).into(),
        );
    }
    let client = Client::from_config(c);
    let running = match client.status().await {
        Ok(_) => true,
        Err(ClientError::Unreachable { .. }) => false,
        // Something answers but not as a gateway we can talk to: treat it as running, to be safe.
        Err(ClientError::Api(_)) => true,
    };
    if what.all && running {
        anyhow::bail!(
            "a gateway is running on this state ({}); stop it first, then `switchboard reset --all`",
            client.url()
        );
    }
    let backup = backup(c, config_path)?;
    println!(
        "backed up config, memory files and database to {}",
        backup.display()
    );
    if what.all {
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", c.db_path().display()));
            remove_file(&p)?;
        }
        for agent in c.agents.keys() {
            let ws = c.workspace(agent);
            if ws.exists() {
                std::fs::remove_dir_all(&ws)
                    .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", ws.display()))?;
            }
        }
        println!(
            "removed the database and the agents' workspaces; the next `switchboard gateway` starts fresh with the same config"
        );
        return Ok(());
    }
    if what.sessions {
        if running {
            println!("{}", client.reset_sessions(None).await?.message);
        } else {
            let n = Store::open(&c.db_path())?.sessions_end("")?;
            println!("ended {n} session(s)");
        }
    }
    if what.crons {
        let n = Store::open(&c.db_path())?.cron_clear()?;
        println!("removed {n} cron job(s)");
    }
    Ok(())
}

fn remove_file(p: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", p.display())),
    }
}

/// Copies the config file, every agent's workspace and a snapshot of the database into a new
/// `<stateDir>/backups/<YYYYMMDD-HHMMSS>/`; returns that directory.
fn backup(c: &Config, config_path: &Path) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let root = c.state_dir().join("backups");
    let mut dir = root.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = root.join(format!("{stamp}-{n}"));
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        anyhow::anyhow!("backup failed ({what}): {e}; nothing was reset")
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&dir.display().to_string(), &e))?;
    if config_path.exists() {
        let name = config_path
            .file_name()
            .map_or_else(|| "config.json5".into(), |n| n.to_os_string());
        std::fs::copy(config_path, dir.join(name)).map_err(|e| fail("config", &e))?;
    }
    if c.db_path().exists() {
        Store::open(&c.db_path())
            .and_then(|s| s.backup_to(&dir.join("switchboard.db")))
            .map_err(|e| fail("database", &e))?;
    }
    for agent in c.agents.keys() {
        let ws = c.workspace(agent);
        if ws.exists() {
            copy_dir(&ws, &dir.join("agents").join(agent)).map_err(|e| fail(agent, &e))?;
        }
    }
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
