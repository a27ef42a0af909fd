//! A streamed chat completion: its `chat.completion.chunk` events (`delta.content`, tool calls
//! whose arguments arrive in pieces by `index`, a final usage chunk, `[DONE]`) put back together
//! into the response a whole answer would have been, with each text delta handed on.

use crate::providers::http::Events;
use crate::providers::{Block, ProviderError, Response, TextSink, Usage};
use serde_json::{Value, json};

#[derive(Default)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

pub async fn read(mut events: Events, sink: &dyn TextSink) -> Result<Response, ProviderError> {
    let mut text = String::new();
    let mut calls: Vec<Call> = Vec::new();
    let mut usage = Usage::default();
    let mut finished = false;
    while let Some((_, data)) = events.next().await? {
        if data.trim() == "[DONE]" {
            return Ok(finish(text, calls, usage));
        }
        let v: Value = serde_json::from_str(&data)
            .map_err(|e| ProviderError::BadResponse(format!("unreadable stream chunk: {e}")))?;
        if v["error"].is_object() {
            return Err(stream_error(&v["error"]));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            usage = Usage::from_openai(u);
        }
        let Some(choice) = v["choices"].get(0) else {
            continue; // the usage chunk
        };
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            text.push_str(t);
            sink.delta(t);
        }
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = match c["index"].as_u64() {
                Some(i) if i < 128 => i as usize,
                None => calls.len().saturating_sub(1),
                Some(_) => {
                    return Err(ProviderError::BadResponse(
                        "a tool call index out of range".into(),
                    ));
                }
            };
            while calls.len() <= i {
                calls.push(Call::default());
            }
            let call = &mut calls[i];
            if let Some(id) = c["id"].as_str() {
                call.id = id.to_string();
            }
            if let Some(n) = c["function"]["name"].as_str() {
                call.name.push_str(n);
            }
            if let Some(a) = c["function"]["arguments"].as_str() {
                call.arguments.push_str(a);
            }
        }
        if choice["finish_reason"].is_string() {
            finished = true;
        }
    }
    // Some servers end the stream without `[DONE]`; an answer that said it finished is whole.
    if finished {
        return Ok(finish(text, calls, usage));
    }
    Err(ProviderError::Network(
        "the answer was cut off before its end".into(),
    ))
}

fn finish(text: String, calls: Vec<Call>, usage: Usage) -> Response {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(Block::Text { text });
    }
    for c in calls.into_iter().filter(|c| !c.name.is_empty()) {
        let args = if c.arguments.trim().is_empty() {
            "{}"
        } else {
            c.arguments.as_str()
        };
        content.push(Block::ToolUse {
            input: serde_json::from_str(args).unwrap_or_else(|_| json!({ "_unparsed": args })),
            id: c.id,
            name: c.name,
        });
    }
    Response { content, usage }
}

/// An error object sent mid-stream (OpenRouter, vLLM and others do), classified.
fn stream_error(e: &Value) -> ProviderError {
    let message: String = e["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let code = e["code"]
        .as_u64()
        .or_else(|| e["code"].as_str().and_then(|c| c.parse().ok()))
        .unwrap_or(0);
    let kind = format!(
        "{} {}",
        e["type"].as_str().unwrap_or_default(),
        e["code"].as_str().unwrap_or_default()
    );
    if code == 429 || kind.contains("rate_limit") {
        return ProviderError::RateLimited { retry_after: None };
    }
    if (500..600).contains(&code) || kind.contains("server_error") {
        return ProviderError::Server {
            status: u16::try_from(code).unwrap_or(500).max(500),
        };
    }
    ProviderError::Refused(format!("error mid-answer: {message}"))
}
