//! `switchboard reset --sessions | --crons | --all`: start over, after a backup of the config, the
//! agents' memory files and the database into `<stateDir>/backups/<time>/`.
//!
//! `--sessions` ends every conversation (through a running gateway, which holds them, else in the
//! database); `--crons` removes every job (a running gateway notices within a second); `--all`
//! removes the database and the agents' workspaces, so the next start is a first start with the
//! same config — and is refused while a gateway is running on them.

use crate::config::Config;
use crate::gateway::client::Client;
use crate::store::Store;
use std::path::Path;

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
    let live = super::gateway::running(c).await;
    if what.all && live.is_some() {
        anyhow::bail!(
            "a gateway is running on this state ({}); stop it first, then `switchboard reset --all`",
            client.url()
        );
    }
    let running = live.is_some_and(|r| r.reachable);
    let backup = crate::backup::create(c, config_path, "reset")
        .await
        .map_err(|e| anyhow::anyhow!("{e}; nothing was reset"))?;
    println!(
        "backed up config, memory files and database to {}",
        backup.display()
    );
    if what.all {
        crate::backup::remove_state(c)?;
        println!(
            "removed the database and the agents' workspaces; the next `switchboard gateway` starts fresh with the same config"
        );
        return Ok(());
    }
    if what.sessions {
        if running {
            println!("{}", client.reset_sessions(None).await?.message);
        } else {
            let n = Store::for_config(c)?.sessions_end("").await?;
            println!("ended {n} session(s)");
        }
    }
    if what.crons {
        let n = Store::for_config(c)?.cron_clear().await?;
        println!("removed {n} cron job(s)");
    }
    Ok(())
}
