//! The built-in tools: memory, tasks, messages and cron. Each is a name, a JSON Schema and a call
//! on [`ToolHost`], so this module needs nothing from the coordinator, channels or store.

use super::{CronRequest, ToolHost, TurnContext};
use crate::providers::ToolSpec;
use serde_json::{Value, json};

/// The built-in tools offered to a turn (`spawn_task` only outside workers): copies of specs made
/// once, whose schemas are shared.
pub fn specs(is_worker: bool) -> Vec<ToolSpec> {
    all()
        .iter()
        .filter(|s| !(is_worker && s.name == "spawn_task"))
        .cloned()
        .collect()
}

/// Whether `name` is a built-in tool.
pub fn is_builtin(name: &str) -> bool {
    all().iter().any(|s| s.name == name)
}

fn all() -> &'static [ToolSpec] {
    static ALL: std::sync::LazyLock<Vec<ToolSpec>> = std::sync::LazyLock::new(build);
    &ALL
}

fn build() -> Vec<ToolSpec> {
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
            "Post a message to a chat: telegram:CHAT_ID, discord:channel:ID, discord:dm:USER_ID, local:NAME or web:NAME.",
            json!({ "type": "object", "properties": {
                "to": { "type": "string" }, "text": { "type": "string" }
            }, "required": ["to", "text"] }),
        ),
        spec(
            "send_file",
            "Post a file or image from your workspace (`path` relative to it) to a chat (`to`, default: this one), with an optional caption.",
            json!({ "type": "object", "properties": {
                "path": { "type": "string" }, "to": { "type": "string" }, "caption": { "type": "string" }
            }, "required": ["path"] }),
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
    v.push(spec(
        "spawn_task",
        "Hand a longer job to a worker agent; it runs in the background and reports to this chat when done.",
        json!({ "type": "object", "properties": {
            "agent": { "type": "string", "description": "worker agent name; default: yourself" },
            "prompt": { "type": "string" }
        }, "required": ["prompt"] }),
    ));
    v
}

pub(super) fn spec(name: &str, description: &str, schema: Value) -> ToolSpec {
    ToolSpec::new(name, description, &schema)
}

/// The string argument `key`, which must be present and not blank.
pub fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or(format!("`{key}` is required"))
}

/// Runs one built-in tool call. `Err` is a message for the model (an error result), never a crash.
pub async fn run(
    name: &str,
    input: &Value,
    ctx: &TurnContext,
    host: &dyn ToolHost,
) -> Result<String, String> {
    let s = |k: &str| input.get(k).and_then(Value::as_str);
    let need = |k: &str| required(input, k);
    match name {
        "remember" => {
            host.remember(ctx, need("text")?, s("where") == Some("today"))
                .await
        }
        "search_memory" => host.search_memory(ctx, need("query")?).await,
        "list_tasks" => host.list_tasks(ctx).await,
        "send_message" => host.send_message(need("to")?, need("text")?).await,
        "send_file" => {
            host.send_file(ctx, s("to"), need("path")?, s("caption").unwrap_or(""))
                .await
        }
        "cron_add" => {
            let spec = CronRequest {
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
        other => Err(format!("no tool named `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_not_offered_spawn_task_and_schemas_go_out_as_json_objects() {
        let names = |v: Vec<ToolSpec>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        let chat = names(specs(false));
        let worker = names(specs(true));
        assert!(chat.iter().any(|n| n == "spawn_task"), "{chat:?}");
        assert!(!worker.iter().any(|n| n == "spawn_task"), "{worker:?}");
        assert_eq!(chat.len(), worker.len() + 1);
        assert!(is_builtin("remember") && !is_builtin("exec"));
        // The shared schema is written out as the object itself, as the providers expect.
        let wire = serde_json::to_value(&specs(false)[0]).unwrap();
        assert_eq!(wire["name"], "remember");
        assert_eq!(wire["input_schema"]["required"], json!(["text"]));
    }
}
