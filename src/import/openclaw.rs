//! `switchboard import openclaw [DIR] [--apply]`: takes over an OpenClaw (formerly clawdbot /
//! moltbot) installation.
//!
//! What is read, as OpenClaw lays it out:
//! - the state dir (`~/.openclaw`, `~/.clawdbot`, `~/.moltbot`) with its JSON5 config
//!   (`openclaw.json`, `clawdbot.json`, `moltbot.json`): `channels.telegram` (`botToken`,
//!   `dmPolicy`, `allowFrom`, `groups`), `channels.discord` (`token`, `dmPolicy` or `dm.policy`,
//!   `allowFrom` or `dm.allowFrom`, `guilds.ID.channels`), `models.providers` (`baseUrl`,
//!   `apiKey`, `api`), `agents.defaults.model` (`primary`, `fallbacks`) and `agents.list`
//!   (`id`, `default`, `workspace`, `model`);
//! - each agent's workspace (`agents.defaults.workspace`, default `<dir>/workspace`; the older
//!   `~/clawd` layout is a workspace on its own): IDENTITY.md, SOUL.md, AGENTS.md and USER.md
//!   (folded into our IDENTITY.md, which is what the prompt carries), MEMORY.md, memory/*.md,
//!   HEARTBEAT.md, skills/;
//! - `cron/jobs.json` (`{ version, jobs: [{ name, agentId, enabled, schedule: { kind: cron,
//!   expr, tz } | { kind: every, everyMs } | { kind: at }, payload: { message | text },
//!   delivery: { channel, to } }] }`).
//!
//! The plan says what maps to what and what cannot come over (and why); `--apply` writes it
//! after a backup, never overwriting a file that holds someone's words (a conflict is kept
//! beside it as `NAME.openclaw.md`).

use crate::config::Config;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    NotFound(String),
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// One config key we would set, and where its value comes from.
#[derive(Debug)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub from: String,
}

/// A workspace file to bring over.
#[derive(Debug)]
pub struct FileCopy {
    pub from: PathBuf,
    pub agent: String,
    /// Path inside our workspace.
    pub to: PathBuf,
}

#[derive(Debug)]
pub struct CronPlan {
    pub name: String,
    pub schedule: String,
    pub tz: Option<String>,
    pub message: String,
    pub agent: String,
    pub target: Option<String>,
    pub enabled: bool,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub dir: PathBuf,
    pub config_file: Option<PathBuf>,
    pub settings: Vec<Setting>,
    /// Our agent name → (coordinator, the workspace it comes from).
    pub agents: Vec<(String, bool, PathBuf)>,
    /// IDENTITY.md assembled from IDENTITY/SOUL/AGENTS/USER, per agent.
    pub identities: Vec<(String, String, Vec<String>)>,
    pub files: Vec<FileCopy>,
    pub crons: Vec<CronPlan>,
    pub skipped: Vec<String>,
}

/// The OpenClaw state dir: `dir` if given, else the first of `~/.openclaw`, `~/.clawdbot`,
/// `~/.moltbot`, `~/clawd` that exists.
pub fn locate(dir: Option<&Path>) -> Result<PathBuf, ImportError> {
    if let Some(d) = dir {
        let d = crate::config::expand_home(&d.to_string_lossy());
        return if d.is_dir() {
            Ok(d)
        } else {
            Err(ImportError::NotFound(format!(
                "{} is not a directory",
                d.display()
            )))
        };
    }
    let home = dirs::home_dir().unwrap_or_default();
    [".openclaw", ".clawdbot", ".moltbot", "clawd"]
        .iter()
        .map(|n| home.join(n))
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            ImportError::NotFound(format!(
                "no OpenClaw state found in {} (~/.openclaw, ~/.clawdbot, ~/.moltbot or ~/clawd); name the directory: `switchboard import openclaw DIR`",
                home.display()
            ))
        })
}

fn read_json5(path: &Path) -> Result<Value, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        what: path.display().to_string(),
        source,
    })?;
    crate::config::parse_json5(path, &text).map_err(|e| ImportError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

/// Our agent names are lowercase words; OpenClaw ids mostly are already.
fn agent_name(id: &str) -> String {
    let n: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() { "main".into() } else { n }
}

/// Reads the OpenClaw state at `dir` into a plan against our config `ours` (if one exists).
pub fn plan(dir: &Path, ours: Option<&Config>) -> Result<Plan, ImportError> {
    let mut p = Plan {
        dir: dir.to_path_buf(),
        ..Plan::default()
    };
    let config_file = ["openclaw.json", "clawdbot.json", "moltbot.json"]
        .iter()
        .map(|n| dir.join(n))
        .find(|f| f.is_file());
    let cfg = match &config_file {
        Some(f) => read_json5(f)?,
        None => Value::Null,
    };
    p.config_file = config_file;
    channels(&cfg, &mut p);
    providers(&cfg, &mut p);
    agents(&cfg, dir, ours, &mut p);
    for (name, _, ws) in p.agents.clone() {
        workspace(&name, &ws, &mut p);
    }
    cron(dir, &mut p)?;
    if p.config_file.is_none() && p.agents.iter().all(|(_, _, ws)| !ws.is_dir()) {
        return Err(ImportError::NotFound(format!(
            "{} has no OpenClaw config (openclaw.json) and no workspace",
            dir.display()
        )));
    }
    Ok(p)
}

fn set(p: &mut Plan, key: &str, value: Value, from: &str) {
    p.settings.push(Setting {
        key: key.into(),
        value,
        from: from.into(),
    });
}

fn ids(v: &Value, strip: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for x in v.as_array().into_iter().flatten() {
        let raw = match x {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => continue,
        };
        let mut id = raw.trim();
        for pre in strip {
            id = id.strip_prefix(pre).unwrap_or(id);
        }
        if id == "*" || id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() {
            ok.push(id.to_string());
        } else {
            bad.push(raw);
        }
    }
    (ok, bad)
}

fn dm_policy(v: Option<&str>, channel: &str, p: &mut Plan) -> Option<&'static str> {
    match v? {
        "pairing" => Some("pairing"),
        "allowlist" => Some("allowlist"),
        "open" => Some("open"),
        "disabled" => {
            p.skipped.push(format!(
                "channels.{channel}.dmPolicy \"disabled\": not a policy here; imported as \"allowlist\" (only allowFrom may write)"
            ));
            Some("allowlist")
        }
        other => {
            p.skipped.push(format!(
                "channels.{channel}.dmPolicy \"{other}\": unknown, left at the default (pairing)"
            ));
            None
        }
    }
}

fn channels(cfg: &Value, p: &mut Plan) {
    let tg = &cfg["channels"]["telegram"];
    if tg.is_object() && tg["enabled"] != false {
        let mut out = serde_json::Map::new();
        match s(&tg["botToken"]).or_else(|| s(&tg["token"])) {
            Some(t) => {
                out.insert("token".into(), json!(t));
            }
            None if tg["tokenFile"].is_string() => p.skipped.push(
                "channels.telegram.tokenFile: put the token itself (or \"${TELEGRAM_BOT_TOKEN}\") in channels.telegram.token".into(),
            ),
            None => {}
        }
        if let Some(d) = dm_policy(tg["dmPolicy"].as_str(), "telegram", p) {
            out.insert("dmPolicy".into(), json!(d));
        }
        let (allow, bad) = ids(&tg["allowFrom"], &["telegram:", "tg:"]);
        if !allow.is_empty() {
            out.insert("allowFrom".into(), json!(allow));
        }
        if !bad.is_empty() {
            p.skipped.push(format!(
                "channels.telegram.allowFrom {bad:?}: only numeric user ids are matched here (usernames can change); approve those people with pairing"
            ));
        }
        if let Some(groups) = tg["groups"].as_object() {
            let mut g = serde_json::Map::new();
            for (id, v) in groups {
                if id == "*" {
                    p.skipped.push("channels.telegram.groups \"*\": groups are served by id here; list each group".into());
                    continue;
                }
                g.insert(
                    id.clone(),
                    json!({ "requireMention": v["requireMention"].as_bool().unwrap_or(true) }),
                );
            }
            if !g.is_empty() {
                out.insert("groups".into(), Value::Object(g));
            }
        }
        set(
            p,
            "channels.telegram",
            Value::Object(out),
            "channels.telegram",
        );
    }
    let dc = &cfg["channels"]["discord"];
    if dc.is_object() && dc["enabled"] != false {
        let mut out = serde_json::Map::new();
        if let Some(t) = s(&dc["token"]).or_else(|| s(&dc["botToken"])) {
            out.insert("token".into(), json!(t));
        }
        let policy = dc["dmPolicy"].as_str().or(dc["dm"]["policy"].as_str());
        if let Some(d) = dm_policy(policy, "discord", p) {
            out.insert("dmPolicy".into(), json!(d));
        }
        let allow_from = if dc["allowFrom"].is_array() {
            &dc["allowFrom"]
        } else {
            &dc["dm"]["allowFrom"]
        };
        let (allow, bad) = ids(allow_from, &["discord:", "user:"]);
        if !allow.is_empty() {
            out.insert("allowFrom".into(), json!(allow));
        }
        if !bad.is_empty() {
            p.skipped.push(format!(
                "channels.discord.allowFrom {bad:?}: only numeric user ids are matched here; approve those people with pairing"
            ));
        }
        if let Some(guilds) = dc["guilds"].as_object() {
            let mut g = serde_json::Map::new();
            let mut mention = None;
            for (id, v) in guilds {
                let chans: Vec<String> = v["channels"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter(|(_, c)| c["allow"] != false && c["enabled"] != false)
                            .map(|(k, _)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let channels = if chans.is_empty() {
                    json!("*")
                } else {
                    json!(chans)
                };
                g.insert(id.clone(), json!({ "channels": channels }));
                if let Some(m) = v["requireMention"].as_bool() {
                    mention = Some(mention.unwrap_or(m) && m);
                }
            }
            if !g.is_empty() {
                out.insert("guilds".into(), Value::Object(g));
            }
            if let Some(m) = mention {
                out.insert("requireMention".into(), json!(m));
            }
        }
        set(
            p,
            "channels.discord",
            Value::Object(out),
            "channels.discord",
        );
    }
    for (name, _) in cfg["channels"].as_object().into_iter().flatten() {
        if !matches!(name.as_str(), "telegram" | "discord" | "defaults") {
            p.skipped.push(format!(
                "channels.{name}: not a channel switchboard has (Telegram and Discord are)"
            ));
        }
    }
}

fn providers(cfg: &Value, p: &mut Plan) {
    for (name, v) in cfg["models"]["providers"].as_object().into_iter().flatten() {
        let api = v["api"].as_str().unwrap_or_default();
        let kind = if api.contains("anthropic") || name == "anthropic" {
            "anthropic"
        } else {
            "openai"
        };
        let mut out = serde_json::Map::new();
        out.insert("kind".into(), json!(kind));
        if let Some(u) = s(&v["baseUrl"]) {
            out.insert("baseUrl".into(), json!(u));
        }
        if let Some(k) = s(&v["apiKey"]) {
            out.insert("apiKey".into(), json!(k));
        }
        set(
            p,
            &format!("providers.{name}"),
            Value::Object(out),
            &format!("models.providers.{name}"),
        );
    }
}

fn model_ref(v: &Value) -> Option<String> {
    s(v).or_else(|| s(&v["primary"]))
}

/// Built-in OpenClaw providers a model reference may name without `models.providers`.
fn ensure_provider(p: &mut Plan, model: &str) {
    let Some((prov, _)) = model.split_once('/') else {
        return;
    };
    let key = format!("providers.{prov}");
    if p.settings.iter().any(|s| s.key == key) {
        return;
    }
    let value = match prov {
        "anthropic" => json!({ "apiKey": "${ANTHROPIC_API_KEY:-}" }),
        "openai" => json!({ "kind": "openai", "apiKey": "${OPENAI_API_KEY:-}" }),
        "openrouter" => {
            json!({ "kind": "openai", "baseUrl": "https://openrouter.ai/api/v1", "apiKey": "${OPENROUTER_API_KEY:-}" })
        }
        "moonshot" => {
            json!({ "kind": "openai", "baseUrl": "https://api.moonshot.ai/v1", "apiKey": "${MOONSHOT_API_KEY:-}" })
        }
        _ => {
            p.skipped.push(format!(
                "model {model}: provider `{prov}` is built into OpenClaw but not described here; add providers.{prov} (kind, baseUrl, apiKey)"
            ));
            return;
        }
    };
    set(p, &key, value, &format!("the model {model}"));
}

fn agents(cfg: &Value, dir: &Path, ours: Option<&Config>, p: &mut Plan) {
    let defaults = &cfg["agents"]["defaults"];
    let default_ws = s(&defaults["workspace"])
        .map(|w| crate::config::expand_home(&w))
        .unwrap_or_else(|| {
            // The `~/clawd` layout: the directory is the workspace itself.
            if dir.join("IDENTITY.md").is_file() || dir.join("SOUL.md").is_file() {
                dir.to_path_buf()
            } else {
                dir.join("workspace")
            }
        });
    let primary = model_ref(&defaults["model"]);
    if let Some(m) = &primary {
        ensure_provider(p, m);
        set(
            p,
            "models.default",
            json!(m),
            "agents.defaults.model.primary",
        );
    }
    let fallbacks: Vec<String> = defaults["model"]["fallbacks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(s)
        .collect();
    for f in &fallbacks {
        ensure_provider(p, f);
    }
    if !fallbacks.is_empty() {
        set(
            p,
            "models.fallbacks",
            json!(fallbacks),
            "agents.defaults.model.fallbacks",
        );
    }
    let list: Vec<&Value> = cfg["agents"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let have_coordinator = ours.is_some_and(|c| c.agents.values().any(|a| a.coordinator));
    let mut found: Vec<(String, bool, PathBuf, Option<String>)> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let id = s(&a["id"]).unwrap_or_else(|| format!("agent{i}"));
        let ws = s(&a["workspace"])
            .map(|w| crate::config::expand_home(&w))
            .unwrap_or_else(|| {
                if i == 0 || a["default"] == true {
                    default_ws.clone()
                } else {
                    dir.join(format!("workspace-{id}"))
                }
            });
        found.push((
            agent_name(&id),
            a["default"] == true,
            ws,
            model_ref(&a["model"]),
        ));
    }
    if found.is_empty() {
        found.push(("main".into(), true, default_ws, None));
    }
    if !found.iter().any(|f| f.1) {
        found[0].1 = true;
    }
    for (name, default, ws, model) in found {
        if ours.is_some_and(|c| c.agents.contains_key(&name)) {
            p.skipped.push(format!(
                "agent `{name}` exists here already: kept as it is; its files are merged (conflicts side by side)"
            ));
        }
        let coordinator = default && !have_coordinator;
        let mut v = serde_json::Map::new();
        if coordinator {
            v.insert("coordinator".into(), json!(true));
        }
        if let Some(m) = &model {
            ensure_provider(p, m);
            v.insert("model".into(), json!(m));
        }
        if !ours.is_some_and(|c| c.agents.contains_key(&name)) {
            set(
                p,
                &format!("agents.{name}"),
                Value::Object(v),
                "agents.list",
            );
        }
        p.agents.push((name, coordinator, ws));
    }
}

/// IDENTITY.md gathers the files OpenClaw puts in every prompt; the rest keep their names.
const FOLDED: [(&str, &str); 4] = [
    ("IDENTITY.md", ""),
    ("SOUL.md", "## Soul"),
    ("AGENTS.md", "## How you work"),
    ("USER.md", "## About your user"),
];
const KEPT: [&str; 2] = ["MEMORY.md", "HEARTBEAT.md"];

fn workspace(agent: &str, ws: &Path, p: &mut Plan) {
    if !ws.is_dir() {
        p.skipped.push(format!(
            "agent `{agent}`: its workspace {} does not exist; it starts with fresh files",
            ws.display()
        ));
        return;
    }
    let mut identity = String::new();
    let mut parts = Vec::new();
    for (file, heading) in FOLDED {
        let Ok(text) = std::fs::read_to_string(ws.join(file)) else {
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        if !identity.is_empty() {
            identity.push_str("\n\n");
        }
        if !heading.is_empty() {
            identity.push_str(heading);
            identity.push_str("\n\n");
        }
        identity.push_str(text.trim_end());
        parts.push(file.to_string());
    }
    if !identity.is_empty() {
        identity.push('\n');
        p.identities.push((agent.into(), identity, parts));
    }
    for file in KEPT {
        if ws.join(file).is_file() {
            p.files.push(FileCopy {
                from: ws.join(file),
                agent: agent.into(),
                to: file.into(),
            });
        }
    }
    for sub in ["memory", "skills"] {
        walk(&ws.join(sub), Path::new(sub), &mut |from, rel| {
            p.files.push(FileCopy {
                from,
                agent: agent.into(),
                to: rel,
            })
        });
    }
    for other in ["TOOLS.md", "BOOT.md", "BOOTSTRAP.md"] {
        if ws.join(other).is_file() {
            p.skipped.push(format!(
                "{}: OpenClaw-specific ({other}); read it and move what still applies into IDENTITY.md",
                ws.join(other).display()
            ));
        }
    }
}

fn walk(dir: &Path, rel: &Path, f: &mut dyn FnMut(PathBuf, PathBuf)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(t) = e.file_type() else { continue };
        let r = rel.join(e.file_name());
        if t.is_dir() {
            walk(&e.path(), &r, f);
        } else if t.is_file() {
            f(e.path(), r);
        }
    }
}

fn target(delivery: &Value) -> Result<Option<String>, String> {
    let Some(channel) = s(&delivery["channel"]) else {
        return Ok(None);
    };
    if delivery["mode"] == "none" {
        return Ok(None);
    }
    let to = s(&delivery["to"]).unwrap_or_default();
    match channel.as_str() {
        "telegram" => {
            let id = to
                .trim_start_matches("telegram:")
                .trim_start_matches("chat:");
            Ok(Some(format!("telegram:{id}")))
        }
        "discord" => match to.split_once(':') {
            Some(("channel", id)) => Ok(Some(format!("discord:channel:{id}"))),
            Some(("user", id)) => Ok(Some(format!("discord:dm:{id}"))),
            _ => Ok(Some(format!("discord:channel:{to}"))),
        },
        other => Err(format!("delivery to {other} (not a channel here)")),
    }
}

fn cron(dir: &Path, p: &mut Plan) -> Result<(), ImportError> {
    let path = dir.join("cron").join("jobs.json");
    if !path.is_file() {
        return Ok(());
    }
    let store = read_json5(&path)?;
    let default_agent = p
        .agents
        .iter()
        .find(|a| a.1)
        .or(p.agents.first())
        .map(|a| a.0.clone())
        .unwrap_or_else(|| "main".into());
    for job in store["jobs"].as_array().into_iter().flatten() {
        let name = s(&job["name"])
            .or_else(|| s(&job["id"]))
            .unwrap_or_default();
        let sched = &job["schedule"];
        let (schedule, tz) = match sched["kind"].as_str() {
            Some("cron") => match s(&sched["expr"]).or_else(|| s(&sched["cron"])) {
                Some(e) => (e, s(&sched["tz"])),
                None => {
                    p.skipped
                        .push(format!("cron job \"{name}\": no expression"));
                    continue;
                }
            },
            Some("every") => {
                let mins = sched["everyMs"].as_u64().unwrap_or(0) / 60_000;
                match mins {
                    m if m > 0 && m < 60 && 60 % m == 0 => (format!("*/{m} * * * *"), None),
                    m if m >= 60 && m % 60 == 0 && 24 % (m / 60) == 0 => {
                        (format!("0 */{} * * *", m / 60), None)
                    }
                    _ => {
                        p.skipped.push(format!(
                            "cron job \"{name}\": every {} ms is no cron schedule; add it with `switchboard cron add`",
                            sched["everyMs"]
                        ));
                        continue;
                    }
                }
            }
            other => {
                p.skipped.push(format!(
                    "cron job \"{name}\": a {} schedule (one-shot reminders are not cron jobs here)",
                    other.unwrap_or("missing")
                ));
                continue;
            }
        };
        let payload = &job["payload"];
        let Some(message) = s(&payload["message"]).or_else(|| s(&payload["text"])) else {
            p.skipped.push(format!("cron job \"{name}\": no message"));
            continue;
        };
        let delivery = if job["delivery"].is_object() {
            &job["delivery"]
        } else {
            payload
        };
        let target = match target(delivery) {
            Ok(t) => t,
            Err(why) => {
                p.skipped.push(format!("cron job \"{name}\": {why}"));
                continue;
            }
        };
        let agent = s(&job["agentId"])
            .map(|a| agent_name(&a))
            .filter(|a| p.agents.iter().any(|x| &x.0 == a))
            .unwrap_or_else(|| default_agent.clone());
        p.crons.push(CronPlan {
            name,
            schedule,
            tz,
            message,
            agent,
            target,
            enabled: job["enabled"] != false,
        });
    }
    Ok(())
}
