//! The tools an agent can call. Each is a name, a JSON Schema and a function; effects that belong
//! to the coordinator (spawning tasks, sending messages) go through [`ToolHost`].

use super::workspace::Workspace;
use crate::config::ExecConfig;
use crate::providers::ToolSpec;
use crate::tools::skills::Skill;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;

/// What a turn is running in: used by tools that act on the chat.
#[derive(Debug, Clone)]
pub struct TurnContext {
    pub agent: String,
    pub session: crate::store::SessionId,
    /// The chat the turn answers (`None` for cron and CLI-less runs).
    pub origin: Option<String>,
    pub thread: Option<String>,
    /// The chat's `/model` choice, overriding the agent's configured model.
    pub model: Option<String>,
    /// Worker sessions may not spawn further tasks.
    pub is_worker: bool,
}

/// The coordinator's side of the tools.
#[async_trait]
pub trait ToolHost: Send + Sync {
    async fn spawn_task(
        &self,
        ctx: &TurnContext,
        agent: Option<&str>,
        prompt: &str,
    ) -> Result<String, String>;
    async fn list_tasks(&self, ctx: &TurnContext) -> Result<String, String>;
    async fn send_message(&self, target: &str, text: &str) -> Result<String, String>;
    async fn cron_add(
        &self,
        ctx: &TurnContext,
        spec: crate::cron::JobSpec,
    ) -> Result<String, String>;
    async fn cron_list(&self, ctx: &TurnContext) -> Result<String, String>;
    async fn cron_remove(&self, id: i64) -> Result<String, String>;
    /// Full-text search of the agent's memory files and past conversations.
    async fn search_memory(&self, ctx: &TurnContext, query: &str) -> Result<String, String>;
}

const OUTPUT_LIMIT: usize = 8_000;

pub fn specs(exec: &ExecConfig, is_worker: bool) -> Vec<ToolSpec> {
    let mut v = vec![
        spec(
            "remember",
            "Save a fact for later. `where`: \"memory\" for durable facts (MEMORY.md), \"today\" for today's note.",
            json!({ "type": "object", "properties": {
                "text": { "type": "string" },
                "where": { "type": "string", "enum": ["memory", "today"] }
            }, "required": ["text"] }),
        ),
        spec(
            "search_memory",
            "Search your memory (MEMORY.md, daily notes) and past conversations; best matches first.",
            json!({ "type": "object", "properties": { "query": { "type": "string" } }, "required": ["query"] }),
        ),
        spec(
            "list_tasks",
            "List the background tasks of this chat and their state.",
            json!({ "type": "object", "properties": {} }),
        ),
        spec(
            "send_message",
            "Post a message to a chat: telegram:CHAT_ID, discord:channel:ID, discord:dm:USER_ID or local:NAME.",
            json!({ "type": "object", "properties": {
                "to": { "type": "string" }, "text": { "type": "string" }
            }, "required": ["to", "text"] }),
        ),
    ];
    v.push(spec(
        "cron_add",
        "Schedule a recurring run of yourself: `schedule` is 5-field cron in the user's time zone (\"0 8 * * 1-5\" = weekdays 08:00), \
         `message` is the prompt you will get then; your reply is posted to `to` (default: this chat). Reply exactly NO_REPLY then to post nothing.",
        json!({ "type": "object", "properties": {
            "schedule": { "type": "string" }, "message": { "type": "string" },
            "to": { "type": "string" }, "tz": { "type": "string" }, "name": { "type": "string" }
        }, "required": ["schedule", "message"] }),
    ));
    v.push(spec(
        "cron_list",
        "List the scheduled jobs of this chat.",
        json!({ "type": "object", "properties": {} }),
    ));
    v.push(spec(
        "cron_remove",
        "Remove a scheduled job by its id.",
        json!({ "type": "object", "properties": { "id": { "type": "integer" } }, "required": ["id"] }),
    ));
    if !is_worker {
        v.push(spec(
            "spawn_task",
            "Hand a longer job to a worker agent; it runs in the background and reports to this chat when done.",
            json!({ "type": "object", "properties": {
                "agent": { "type": "string", "description": "worker agent name; default: yourself" },
                "prompt": { "type": "string" }
            }, "required": ["prompt"] }),
        ));
    }
    if exec.enabled {
        v.push(spec(
            "exec",
            &format!(
                "Run a command (no shell). Allowed programs: {}.",
                exec.allow.join(", ")
            ),
            json!({ "type": "object", "properties": { "command": { "type": "string" } }, "required": ["command"] }),
        ));
    }
    v
}

/// `read_skill`, offered when the agent has skills (see `crate::tools::skills`).
pub fn read_skill_spec() -> ToolSpec {
    spec(
        "read_skill",
        "Load a skill's instructions by its name (listed under Skills); with `path`, read a file inside that skill's folder.",
        json!({ "type": "object", "properties": {
            "name": { "type": "string" },
            "path": { "type": "string", "description": "a file inside the skill's folder, e.g. `reference.md`" }
        }, "required": ["name"] }),
    )
}

fn spec(name: &str, description: &str, schema: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        input_schema: schema,
    }
}

/// Runs one tool call. `Err` is a message for the model (an error result), never a crash.
pub async fn run(
    name: &str,
    input: &Value,
    ws: &Workspace,
    exec: &ExecConfig,
    skills: &[Skill],
    ctx: &TurnContext,
    host: &dyn ToolHost,
) -> Result<String, String> {
    let s = |k: &str| input.get(k).and_then(Value::as_str);
    let need = |k: &str| {
        s(k).filter(|v| !v.trim().is_empty())
            .ok_or(format!("`{k}` is required"))
    };
    match name {
        "remember" => {
            let text = need("text")?;
            let res = match s("where") {
                Some("today") => ws.note_today(text),
                _ => ws.remember(text),
            };
            res.map(|_| "saved".to_string())
                .map_err(|e| format!("could not save: {e}"))
        }
        "search_memory" => host.search_memory(ctx, need("query")?).await,
        "list_tasks" => host.list_tasks(ctx).await,
        "send_message" => host.send_message(need("to")?, need("text")?).await,
        "cron_add" => {
            let spec = crate::cron::JobSpec {
                schedule: need("schedule")?.to_string(),
                message: need("message")?.to_string(),
                target: s("to").map(str::to_string).or_else(|| ctx.origin.clone()),
                agent: Some(ctx.agent.clone()),
                tz: s("tz").map(str::to_string),
                name: s("name").map(str::to_string),
            };
            host.cron_add(ctx, spec).await
        }
        "cron_list" => host.cron_list(ctx).await,
        "cron_remove" => {
            let id = input
                .get("id")
                .and_then(|v| {
                    v.as_i64().or_else(|| {
                        v.as_str()
                            .and_then(|s| s.trim_start_matches('#').parse().ok())
                    })
                })
                .ok_or("`id` is required")?;
            host.cron_remove(id).await
        }
        "spawn_task" if !ctx.is_worker => host.spawn_task(ctx, s("agent"), need("prompt")?).await,
        "exec" if exec.enabled => run_exec(need("command")?, exec).await,
        "read_skill" if !skills.is_empty() => {
            crate::tools::skills::read(skills, need("name")?, s("path"))
        }
        other => Err(format!("no tool named `{other}`")),
    }
}

/// Runs an allow-listed program directly (no shell), with a timeout and truncated output.
async fn run_exec(command: &str, cfg: &ExecConfig) -> Result<String, String> {
    let argv = shell_words::split(command).map_err(|e| format!("cannot parse command: {e}"))?;
    let Some(program) = argv.first() else {
        return Err("empty command".into());
    };
    if !cfg.allow.iter().any(|a| a == program) {
        return Err(format!(
            "`{program}` is not allowed (allowed: {})",
            cfg.allow.join(", ")
        ));
    }
    let child = tokio::process::Command::new(program)
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(cfg.timeout_seconds), child)
        .await
        .map_err(|_| format!("timed out after {}s", cfg.timeout_seconds))?
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.is_empty() {
        text.push_str("\n[stderr]\n");
        text.push_str(&err);
    }
    if text.len() > OUTPUT_LIMIT {
        text.truncate(text.floor_char_boundary(OUTPUT_LIMIT));
        text.push_str("\n[output truncated]");
    }
    let code = out.status.code().map_or("signal".into(), |c| c.to_string());
    Ok(format!("exit {code}\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exec_runs_only_allowed_programs_and_truncates() {
        let cfg = ExecConfig {
            enabled: true,
            allow: vec!["echo".into(), "yes".into(), "sleep".into()],
            timeout_seconds: 1,
        };
        let out = run_exec("echo hello 'two words'", &cfg).await.unwrap();
        assert!(out.starts_with("exit 0\nhello two words"), "{out}");
        let err = run_exec("rm -rf /tmp/x", &cfg).await.unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        let err = run_exec("sleep 5", &cfg).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        let cfg2 = ExecConfig {
            timeout_seconds: 1,
            ..cfg
        };
        // `yes` never stops: the timeout ends it; truncation is checked on a bounded command.
        let out = run_exec(&format!("echo {}", "x".repeat(9000)), &cfg2)
            .await
            .unwrap();
        assert!(out.ends_with("[output truncated]"));
    }
}
