//! A session's stored turns as a conversation: text as messages, tool calls and their results
//! folded away (open them to see the arguments and the output).

use crate::providers::Block;
use crate::store::TurnRow;
use maud::{Markup, html};

pub fn render(turns: &[TurnRow]) -> Markup {
    html! {
        @for t in turns {
            @match serde_json::from_str::<Vec<Block>>(&t.content) {
                Ok(blocks) => { @for b in &blocks { (block(&t.role, b)) } }
                // A turn this version cannot read is shown as stored, not dropped.
                Err(_) => { details { summary { (t.role) " (raw)" } pre { (t.content) } } }
            }
        }
    }
}

fn block(role: &str, b: &Block) -> Markup {
    let class = if role == "user" {
        "msg user"
    } else {
        "msg assistant"
    };
    match b {
        Block::Text { text } if !text.trim().is_empty() => html! { div class=(class) { (text) } },
        Block::Text { .. } => html! {},
        Block::ToolUse { name, input, .. } => html! {
            details {
                summary { "🔧 " (name) }
                pre { (serde_json::to_string_pretty(input).unwrap_or_default()) }
            }
        },
        Block::ToolResult {
            content, is_error, ..
        } => html! {
            details {
                summary { @if *is_error { "⚠️ tool error" } @else { "↩︎ tool result" } }
                pre { (content) }
            }
        },
        other => html! {
            div class=(class) { span.mute { (attachment(other)) } }
        },
    }
}

fn attachment(b: &Block) -> String {
    match serde_json::to_value(b) {
        Ok(v) => {
            let kind = v
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("attachment");
            match v.get("path").and_then(|p| p.as_str()) {
                Some(p) => format!("[{kind}: {p}]"),
                None => format!("[{kind}]"),
            }
        }
        Err(_) => "[attachment]".into(),
    }
}
