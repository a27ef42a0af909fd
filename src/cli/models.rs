//! `switchboard models download|list`: whisper models in the state dir (works with the gateway down).

use super::ModelsSub;
use crate::config::Config;
use crate::voice::models::{self, CATALOGUE, Request, mb};

pub(super) async fn models(c: &Config, sub: ModelsSub) -> anyhow::Result<()> {
    let dir = c.state_dir().join("models");
    let configured = c.voice_model().0;
    match sub {
        ModelsSub::Download {
            name,
            base_url,
            sha256,
        } => {
            let model = models::lookup(&name).map_err(|e| super::UsageError(e.to_string()))?;
            let base_url = base_url.unwrap_or_else(|| models::DEFAULT_BASE_URL.to_string());
            let done = models::download(&Request {
                model,
                base_url: &base_url,
                dir: &dir,
                sha256: sha256.as_deref(),
            })
            .await
            .map_err(|e| match e {
                models::ModelsError::BadChecksum(_) => {
                    anyhow::Error::new(super::UsageError(e.to_string()))
                }
                e => e.into(),
            })?;
            if done.already {
                println!(
                    "{} is already installed ({}, checksum ok)",
                    done.path.display(),
                    mb(done.bytes)
                );
            } else {
                let resumed = if done.resumed_from > 0 {
                    format!(", resumed from {}", mb(done.resumed_from))
                } else {
                    String::new()
                };
                println!(
                    "installed {} ({}, checksum ok{resumed})",
                    done.path.display(),
                    mb(done.bytes)
                );
            }
            if configured != done.path {
                println!(
                    "to use it: switchboard config set voice.model \"{}\"",
                    done.path.display()
                );
            }
        }
        ModelsSub::List { json } => {
            let listed = models::list(&dir)?;
            if json {
                let v = serde_json::json!({
                    "dir": dir,
                    "configured": configured,
                    "installed": listed,
                    "available": CATALOGUE,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("models in {}:", dir.display());
            if listed.is_empty() {
                println!("  (none) — switchboard models download base.en");
            }
            for m in &listed {
                let mut notes = Vec::new();
                if m.partial {
                    let name = m.known_as.unwrap_or("NAME");
                    notes.push(format!(
                        "interrupted download; `switchboard models download {name}` resumes it"
                    ));
                } else if let Some(k) = m.known_as {
                    notes.push(k.to_string());
                }
                if m.path == configured {
                    notes.push("voice.model".to_string());
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                };
                println!("  {:<24} {:>9}{notes}", m.file, mb(m.bytes));
            }
            if !configured.exists() && !listed.iter().any(|m| m.path == configured) {
                println!(
                    "voice.model points at {}, which is missing",
                    configured.display()
                );
            }
            let available: Vec<String> = CATALOGUE
                .iter()
                .filter(|k| {
                    !listed
                        .iter()
                        .any(|m| !m.partial && m.known_as == Some(k.name))
                })
                .map(|k| format!("{} ({})", k.name, mb(k.bytes)))
                .collect();
            if !available.is_empty() {
                println!("available: {}", available.join(", "));
            }
        }
    }
    Ok(())
}
