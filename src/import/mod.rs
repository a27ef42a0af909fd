//! Bringing another system's state over. Today: OpenClaw (`openclaw`), the Node.js gateway most
//! people come from. Reading builds a plan that can be shown without changing anything;
//! applying it backs up first and never overwrites what someone wrote.

pub mod openclaw;

use crate::config::Config;
use openclaw::{ImportError, Plan};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What `--apply` did.
#[derive(Debug, Default)]
pub struct Applied {
    pub backup: Option<PathBuf>,
    pub config_keys: usize,
    pub files: usize,
    /// Files kept beside ours because ours already held something else.
    pub conflicts: Vec<PathBuf>,
    pub crons: usize,
}

fn masked(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let secret = matches!(k.as_str(), "token" | "apiKey" | "botToken")
                        && v.as_str().is_some_and(|s| !s.starts_with("${"));
                    let v = if secret {
                        Value::from("***")
                    } else {
                        masked(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The plan as a person reads it; secrets shown as `***`.
pub fn describe(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "OpenClaw state: {}{}",
        p.dir.display(),
        p.config_file
            .as_ref()
            .map(|f| format!(" (config {})", f.display()))
            .unwrap_or_else(|| " (no config file)".into())
    );
    if !p.settings.is_empty() {
        let _ = writeln!(s, "\nconfig:");
        for x in &p.settings {
            let _ = writeln!(s, "  {} ← {}: {}", x.key, x.from, masked(&x.value));
        }
    }
    let _ = writeln!(s, "\nagents:");
    for (name, coordinator, ws) in &p.agents {
        let _ = writeln!(
            s,
            "  {name}{} ← workspace {}",
            if *coordinator { " (coordinator)" } else { "" },
            ws.display()
        );
    }
    if !p.identities.is_empty() || !p.files.is_empty() {
        let _ = writeln!(s, "\nfiles:");
        for (agent, _, parts) in &p.identities {
            let _ = writeln!(s, "  {agent}/IDENTITY.md ← {}", parts.join(" + "));
        }
        for f in &p.files {
            let _ = writeln!(s, "  {}/{} ← {}", f.agent, f.to.display(), f.from.display());
        }
    }
    if !p.crons.is_empty() {
        let _ = writeln!(s, "\ncron jobs:");
        for c in &p.crons {
            let _ = writeln!(
                s,
                "  \"{}\" {}{} → {} as {}{}",
                c.name,
                c.schedule,
                c.tz.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(),
                c.target.as_deref().unwrap_or("no chat"),
                c.agent,
                if c.enabled { "" } else { " (disabled)" }
            );
        }
    }
    if !p.skipped.is_empty() {
        let _ = writeln!(s, "\ncannot bring over as it is:");
        for x in &p.skipped {
            let _ = writeln!(s, "  - {x}");
        }
    }
    s
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ImportError {
    move |source| ImportError::Io {
        what: what.to_string(),
        source,
    }
}

/// Writes `text` to `dest` unless that would lose someone's words: a missing file, an untouched
/// starter file or identical content are fine; otherwise it goes beside as `NAME.openclaw.EXT`.
fn place(agent: &str, dest: &Path, text: &[u8], done: &mut Applied) -> Result<(), ImportError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    }
    let target = match std::fs::read(dest) {
        Err(_) => dest.to_path_buf(),
        Ok(cur) if cur == text => return Ok(()),
        Ok(cur) => {
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let starter = std::str::from_utf8(&cur)
                .is_ok_and(|c| crate::agent::workspace::is_starter(&name, agent, c));
            if starter {
                dest.to_path_buf()
            } else {
                let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
                let side = dest.with_file_name(format!("{stem}.openclaw.{ext}"));
                done.conflicts.push(side.clone());
                side
            }
        }
    };
    std::fs::write(&target, text).map_err(io(target.display()))?;
    done.files += 1;
    Ok(())
}

/// Carries the plan out: a backup of the current state, the config keys (comments and layout
/// of an existing file kept), the files, the cron jobs.
pub async fn apply(
    p: &Plan,
    config_path: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Applied> {
    let mut done = Applied::default();
    if let Ok(ours) = Config::load(config_path) {
        done.backup = Some(crate::backup::create(&ours, config_path, "import").await?);
    }
    let edits: Vec<(String, String)> = p
        .settings
        .iter()
        .map(|s| (s.key.clone(), s.value.to_string()))
        .collect();
    let header = format!(
        "// switchboard config, brought over from OpenClaw ({}) by `switchboard import openclaw --apply`.\n\
         // Every key: config.example.json5 and the README.\n",
        p.dir.display()
    );
    crate::config::set_all(config_path, &header, &edits)?;
    done.config_keys = edits.len();
    let c = Config::load(config_path)?;
    for (agent, identity, _) in &p.identities {
        place(
            agent,
            &c.workspace(agent).join("IDENTITY.md"),
            identity.as_bytes(),
            &mut done,
        )?;
    }
    for f in &p.files {
        let bytes = std::fs::read(&f.from).map_err(io(f.from.display()))?;
        place(
            &f.agent,
            &c.workspace(&f.agent).join(&f.to),
            &bytes,
            &mut done,
        )?;
    }
    if !p.crons.is_empty() {
        let store = crate::store::Store::for_config(&c)?;
        let existing = store.cron_jobs(None).await?;
        for j in &p.crons {
            let again = existing
                .iter()
                .any(|e| e.name == j.name && e.schedule == j.schedule && e.agent == j.agent);
            if again {
                continue;
            }
            let spec = crate::cron::JobSpec {
                schedule: j.schedule.clone(),
                message: j.message.clone(),
                target: j.target.clone(),
                agent: Some(j.agent.clone()),
                tz: j.tz.clone(),
                name: Some(j.name.clone()),
            };
            let job = crate::cron::add_job(&c, &store, now, spec)
                .await
                .map_err(|e| anyhow::anyhow!("cron job \"{}\": {e}", j.name))?;
            if !j.enabled {
                crate::cron::set_enabled(&store, now, job.id, false)
                    .await
                    .map_err(|e| anyhow::anyhow!("cron job \"{}\": {e}", j.name))?;
            }
            done.crons += 1;
        }
    }
    Ok(done)
}
