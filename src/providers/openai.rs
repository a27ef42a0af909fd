//! OpenAI-compatible chat completions (`POST {baseUrl}/chat/completions`), with tool calls.
//! Moonshot, Groq, Gemini's OpenAI endpoint, Ollama and OpenRouter all speak it.

use super::credentials::{Credential, CredentialSource};
use super::http::{Http, post_json, retry_after};
use super::{Block, Provider, ProviderError, Request, Response, Role, Usage};
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct OpenAi {
    http: Http,
    base_url: String,
    cred: CredentialSource,
}

impl OpenAi {
    pub fn new(http: Http, base_url: Option<&str>, cred: CredentialSource) -> Self {
        Self {
            http,
            base_url: base_url
                .unwrap_or("https://api.openai.com/v1")
                .trim_end_matches('/')
                .to_string(),
            cred,
        }
    }
}

#[async_trait]
impl Provider for OpenAi {
    async fn complete(&self, req: &Request) -> Result<Response, ProviderError> {
        // Local servers (Ollama) need no key; hosted ones answer 401, which we classify.
        let (mut token, oauth) = match self.cred.current() {
            Credential::None => (None, None),
            Credential::ApiKey(k) => (Some(k), None),
            Credential::OAuth(o) => (Some(o.access_token().await?), Some(o)),
        };
        let body = to_wire(req);
        let mut retried = false;
        loop {
            let mut http = self
                .http
                .post(format!("{}/chat/completions", self.base_url))
                .json(&body);
            if let Some(t) = &token {
                http = http.bearer_auth(t);
            }
            let (status, headers, text) = post_json(http).await?;
            if status == 401
                && !retried
                && let (Some(o), Some(t)) = (&oauth, &token)
            {
                token = Some(o.after_unauthorized(t).await?);
                retried = true;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(ProviderError::from_status(
                    status,
                    retry_after(&headers),
                    &text,
                ));
            }
            return from_wire(&text);
        }
    }
}

fn to_wire(req: &Request) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": req.system })];
    for m in &req.messages {
        match m.role {
            Role::Assistant => {
                let text = m.text();
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolUse { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": { "name": name, "arguments": input.to_string() }
                        })),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({ "role": "assistant", "content": text });
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
            Role::User => {
                // Tool results become `tool` messages; any text stays a user message after them.
                for b in &m.content {
                    if let Block::ToolResult {
                        tool_use_id,
                        content,
                        ..
                    } = b
                    {
                        messages.push(
                            json!({ "role": "tool", "tool_call_id": tool_use_id, "content": content }),
                        );
                    }
                }
                let text = m.text();
                if !text.is_empty() {
                    messages.push(json!({ "role": "user", "content": text }));
                }
            }
        }
    }
    let mut body =
        json!({ "model": req.model, "max_tokens": req.max_tokens, "messages": messages });
    if !req.tools.is_empty() {
        body["tools"] = Value::Array(
            req.tools
                .iter()
                .map(|t| {
                    json!({ "type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.input_schema
                    }})
                })
                .collect(),
        );
    }
    body
}

fn from_wire(text: &str) -> Result<Response, ProviderError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ProviderError::BadResponse(e.to_string()))?;
    let msg = &v["choices"][0]["message"];
    if msg.is_null() {
        return Err(ProviderError::BadResponse("no `choices[0].message`".into()));
    }
    let mut content = Vec::new();
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(Block::Text {
            text: t.to_string(),
        });
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        let args = call["function"]["arguments"].as_str().unwrap_or("{}");
        content.push(Block::ToolUse {
            id: call["id"].as_str().unwrap_or_default().to_string(),
            name: call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            // A model that writes broken JSON arguments gets an error result, not a crash.
            input: serde_json::from_str(args).unwrap_or(json!({ "_unparsed": args })),
        });
    }
    Ok(Response {
        content,
        usage: Usage {
            input_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        },
    })
}
