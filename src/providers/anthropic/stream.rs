//! A streamed Messages answer: its events (`message_start`, `content_block_start`,
//! `content_block_delta`, `message_delta`, `message_stop`, `error`) put back together into the
//! response a whole answer would have been, with each text delta handed on as it arrives.

use crate::providers::http::Events;
use crate::providers::{Block, ProviderError, Response, TextSink, Usage};
use serde_json::Value;

/// A content block as it is being written.
enum Part {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// Thinking and block types we do not keep (as the whole answer drops them).
    Other,
}

pub async fn read(mut events: Events, sink: &dyn TextSink) -> Result<Response, ProviderError> {
    let mut parts: Vec<Part> = Vec::new();
    let mut usage = Usage::default();
    while let Some((event, data)) = events.next().await? {
        let v: Value = match serde_json::from_str(&data) {
            Ok(v) => v,
            Err(e) => {
                return Err(ProviderError::BadResponse(format!(
                    "unreadable stream event: {e}"
                )));
            }
        };
        let kind = event
            .as_deref()
            .or(v["type"].as_str())
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "message_start" => {
                usage.merge_anthropic(&v["message"]["usage"]);
            }
            "content_block_start" => {
                let i = index(&v)?;
                let b = &v["content_block"];
                let part = match b["type"].as_str() {
                    Some("text") => {
                        let t = b["text"].as_str().unwrap_or_default().to_string();
                        if !t.is_empty() {
                            sink.delta(&t);
                        }
                        Part::Text(t)
                    }
                    Some("tool_use") => Part::Tool {
                        id: b["id"].as_str().unwrap_or_default().to_string(),
                        name: b["name"].as_str().unwrap_or_default().to_string(),
                        json: String::new(),
                    },
                    _ => Part::Other,
                };
                while parts.len() <= i {
                    parts.push(Part::Other);
                }
                parts[i] = part;
            }
            "content_block_delta" => {
                let i = index(&v)?;
                let d = &v["delta"];
                match (parts.get_mut(i), d["type"].as_str()) {
                    (Some(Part::Text(t)), Some("text_delta")) => {
                        let more = d["text"].as_str().unwrap_or_default();
                        t.push_str(more);
                        sink.delta(more);
                    }
                    (Some(Part::Tool { json, .. }), Some("input_json_delta")) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or_default());
                    }
                    (None, _) => {
                        return Err(ProviderError::BadResponse(format!(
                            "a delta for block {i}, which was never started"
                        )));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                // The final counts; a zero input count here means "as in message_start".
                let mut u = v["usage"].clone();
                if u["input_tokens"].as_u64() == Some(0)
                    && let Some(o) = u.as_object_mut()
                {
                    o.remove("input_tokens");
                }
                usage.merge_anthropic(&u);
            }
            "message_stop" => return Ok(finish(parts, usage)),
            "error" => return Err(stream_error(&v["error"])),
            // `ping`, `content_block_stop` and event types added later.
            _ => {}
        }
    }
    Err(ProviderError::Network(
        "the answer was cut off before its end".into(),
    ))
}

fn index(v: &Value) -> Result<usize, ProviderError> {
    v["index"]
        .as_u64()
        .filter(|i| *i < 1024)
        .map(|i| i as usize)
        .ok_or_else(|| ProviderError::BadResponse("a stream event without a block index".into()))
}

fn finish(parts: Vec<Part>, usage: Usage) -> Response {
    let content = parts
        .into_iter()
        .filter_map(|p| match p {
            Part::Text(text) => Some(Block::Text { text }),
            Part::Tool { id, name, json } => Some(Block::ToolUse {
                id,
                name,
                // No input deltas means no arguments; broken JSON reaches the tool as such and
                // gets an error result, as in a whole answer.
                input: if json.trim().is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::from_str(&json)
                        .unwrap_or_else(|_| serde_json::json!({ "_unparsed": json }))
                },
            }),
            Part::Other => None,
        })
        .collect();
    Response { content, usage }
}

/// An `error` event mid-stream, classified as the same error in a status line would be.
fn stream_error(e: &Value) -> ProviderError {
    let message: String = e["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    match e["type"].as_str().unwrap_or_default() {
        "overloaded_error" => ProviderError::Overloaded,
        "rate_limit_error" => ProviderError::RateLimited { retry_after: None },
        "api_error" => ProviderError::Server { status: 500 },
        "authentication_error" | "permission_error" => {
            ProviderError::Auth("authentication failed mid-answer".into())
        }
        other => ProviderError::Refused(format!("{other}: {message}")),
    }
}
