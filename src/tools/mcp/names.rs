//! `SERVER__TOOL` names within the providers' rules: Anthropic and OpenAI both take
//! `^[a-zA-Z0-9_-]{1,64}$`, and MCP tool names may hold dots, slashes or anything else.

use super::McpTool;
use crate::providers::ToolSpec;
use std::collections::BTreeMap;

const MAX: usize = 64;

/// Characters outside `[a-zA-Z0-9_-]` become `_`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The exposed name of `server`'s `tool`: sanitised, and when longer than the limit cut with a
/// short hash of the whole, so two long names stay apart.
fn exposed(server: &str, tool: &str) -> String {
    let full = format!("{}__{}", sanitize(server), sanitize(tool));
    if full.len() <= MAX {
        return full;
    }
    let hash = fnv(&full);
    format!("{}_{hash:08x}", &full[..MAX - 9])
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x01000193)
    })
}

/// Every server's tools by exposed name; a name two tools would share gets `_2`, `_3`, ….
pub fn index(lists: &[(String, Vec<rmcp::model::Tool>)]) -> BTreeMap<String, McpTool> {
    let mut out = BTreeMap::new();
    for (server, tools) in lists {
        for t in tools {
            let mut name = exposed(server, &t.name);
            let mut n = 2;
            while out.contains_key(&name) {
                let suffix = format!("_{n}");
                let base = exposed(server, &t.name);
                name = format!("{}{suffix}", &base[..base.len().min(MAX - suffix.len())]);
                n += 1;
            }
            let description = t
                .description
                .as_deref()
                .or(t.title.as_deref())
                .unwrap_or("")
                .to_string();
            let mut schema = serde_json::Value::Object((*t.input_schema).clone());
            if schema.get("type").is_none() {
                schema["type"] = "object".into();
            }
            out.insert(
                name.clone(),
                McpTool {
                    server: server.clone(),
                    name: t.name.to_string(),
                    exposed: name.clone(),
                    spec: ToolSpec::new(name, format!("[MCP {server}] {description}"), &schema),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> rmcp::model::Tool {
        serde_json::from_value(serde_json::json!({
            "name": name, "description": "d", "inputSchema": { "type": "object" }
        }))
        .unwrap()
    }

    #[test]
    fn names_follow_provider_rules_and_stay_unique() {
        let long = "x".repeat(80);
        let idx = index(&[
            (
                "time".into(),
                vec![
                    tool("get.current/time"),
                    tool(&long),
                    tool(&format!("{long}y")),
                ],
            ),
            ("my server".into(), vec![tool("a")]),
            ("my_server".into(), vec![tool("a")]),
        ]);
        let names: Vec<&String> = idx.keys().collect();
        for n in &names {
            assert!(n.len() <= 64, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{n}"
            );
        }
        assert!(idx.contains_key("time__get_current_time"));
        assert_eq!(idx["time__get_current_time"].name, "get.current/time");
        assert!(idx.contains_key("my_server__a") && idx.contains_key("my_server__a_2"));
        assert_eq!(names.len(), 5);
    }
}
