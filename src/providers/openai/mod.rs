//! OpenAI-compatible chat completions (`POST {baseUrl}/chat/completions`), with tool calls.
//! Moonshot, Groq, Gemini's OpenAI endpoint, Ollama and OpenRouter all speak it. Whole or
//! streamed (`stream`: its server-sent `chat.completion.chunk`s).

use super::credentials::{Credential, CredentialSource};
mod stream;

use super::http::{Http, events, is_event_stream, send_refreshing, text};
use super::{Block, Provider, ProviderError, Request, Response, Role, TextSink, Usage};
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

impl OpenAi {
    /// Posts the request (streamed or not), refreshing an OAuth token once when it was revoked
    /// before its expiry; a success to read, or the failure classified.
    async fn send(&self, req: &Request, stream: bool) -> Result<reqwest::Response, ProviderError> {
        // Local servers (Ollama) need no key; hosted ones answer 401, which we classify.
        let (token, oauth) = match self.cred.current() {
            Credential::None => (None, None),
            Credential::ApiKey(k) => (Some(k), None),
            Credential::OAuth(o) => (Some(o.access_token().await?), Some(o)),
        };
        let body = bytes::Bytes::from(to_wire(req, stream)?);
        let url = format!("{}/chat/completions", self.base_url);
        send_refreshing(token, oauth.as_deref(), |token| {
            let http = self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            match token {
                Some(t) => http.bearer_auth(t),
                None => http,
            }
        })
        .await
    }
}

#[async_trait]
impl Provider for OpenAi {
    async fn complete(&self, req: &Request) -> Result<Response, ProviderError> {
        let resp = self.send(req, false).await?;
        from_wire(&text(resp).await?)
    }

    async fn stream(&self, req: &Request, sink: &dyn TextSink) -> Result<Response, ProviderError> {
        let resp = self.send(req, true).await?;
        if !is_event_stream(&resp) {
            let r = from_wire(&text(resp).await?)?;
            super::emit_text(&r, sink);
            return Ok(r);
        }
        stream::read(events(resp), sink).await
    }
}

/// The request body in OpenAI's shape, serialized straight from the borrowed history (no
/// `serde_json::Value` tree, no copy of the messages).
fn to_wire(req: &Request, stream: bool) -> Result<Vec<u8>, ProviderError> {
    use std::borrow::Cow;
    #[derive(serde::Serialize)]
    struct Body<'a> {
        model: &'a str,
        max_tokens: u32,
        messages: Vec<Wire<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tools: Vec<Tool<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stream: bool,
        /// The usage chunk at the end of a stream (servers that do not know it ignore it).
        #[serde(skip_serializing_if = "Option::is_none")]
        stream_options: Option<Value>,
    }
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        role: &'static str,
        content: Content<'a>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<Call<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_call_id: Option<&'a str>,
    }
    /// Text, or (for images a tool returned) a list of text and `image_url` parts.
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Content<'a> {
        Text(Cow<'a, str>),
        Parts(Vec<Value>),
    }
    #[derive(serde::Serialize)]
    struct Call<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        function: CallFn<'a>,
    }
    #[derive(serde::Serialize)]
    struct CallFn<'a> {
        name: &'a str,
        arguments: String,
    }
    #[derive(serde::Serialize)]
    struct Tool<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        function: ToolFn<'a>,
    }
    #[derive(serde::Serialize)]
    struct ToolFn<'a> {
        name: &'a str,
        description: &'a str,
        parameters: &'a serde_json::value::RawValue,
    }
    let plain = |role, content| Wire {
        role,
        content: Content::Text(content),
        tool_calls: Vec::new(),
        tool_call_id: None,
    };
    let mut messages = vec![plain("system", Cow::Borrowed(req.system.as_str()))];
    for m in req.messages.iter() {
        match m.role {
            Role::Assistant => {
                let mut msg = plain("assistant", Cow::Owned(m.text()));
                msg.tool_calls = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolUse { id, name, input } => Some(Call {
                            id,
                            kind: "function",
                            function: CallFn {
                                name,
                                arguments: input.to_string(),
                            },
                        }),
                        _ => None,
                    })
                    .collect();
                messages.push(msg);
            }
            Role::User => {
                // Tool results become `tool` messages (whose content is text only: images they
                // returned follow in a user message); any text stays a user message after them.
                let mut images = Vec::new();
                for b in &m.content {
                    if let Block::ToolResult {
                        tool_use_id,
                        content,
                        images: imgs,
                        ..
                    } = b
                    {
                        let mut msg = plain("tool", Cow::Borrowed(content.as_str()));
                        msg.tool_call_id = Some(tool_use_id);
                        messages.push(msg);
                        images.extend(imgs.iter());
                    }
                }
                if !images.is_empty() {
                    let mut parts = vec![
                        serde_json::json!({ "type": "text", "text": "(images returned by the tools above)" }),
                    ];
                    parts.extend(images.iter().map(|i| {
                        serde_json::json!({ "type": "image_url", "image_url": {
                            "url": format!("data:{};base64,{}", i.media_type, i.data) } })
                    }));
                    let mut msg = plain("user", Cow::Borrowed(""));
                    msg.content = Content::Parts(parts);
                    messages.push(msg);
                }
                let text = m.text();
                let sent_images: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ImageFile { path, media_type } => Some(
                            match crate::media::base64_of(path) {
                                Some(data) => serde_json::json!({ "type": "image_url", "image_url": {
                                    "url": format!("data:{media_type};base64,{data}") } }),
                                None => serde_json::json!({ "type": "text",
                                    "text": format!("[an image the user sent earlier is no longer available: {path}]") }),
                            },
                        ),
                        Block::DocumentFile { path, name, .. } => Some(serde_json::json!({
                            "type": "text", "text": document_text(path, name) })),
                        _ => None,
                    })
                    .collect();
                if !sent_images.is_empty() {
                    let mut parts = vec![serde_json::json!({ "type": "text", "text": text })];
                    parts.extend(sent_images);
                    let mut msg = plain("user", Cow::Borrowed(""));
                    msg.content = Content::Parts(parts);
                    messages.push(msg);
                } else if !text.is_empty() {
                    messages.push(plain("user", Cow::Owned(text)));
                }
            }
        }
    }
    let tools = req
        .tools
        .iter()
        .map(|t| Tool {
            kind: "function",
            function: ToolFn {
                name: &t.name,
                description: &t.description,
                parameters: &t.input_schema,
            },
        })
        .collect();
    serde_json::to_vec(&Body {
        model: &req.model,
        max_tokens: req.max_tokens,
        messages,
        tools,
        stream,
        stream_options: stream.then(|| json!({ "include_usage": true })),
    })
    .map_err(|e| ProviderError::BadResponse(format!("cannot encode the request: {e}")))
}

/// A PDF as this provider takes it: its text, extracted when it arrived (marked as data, cut to
/// a bound), or a note of where it is when it has none.
fn document_text(path: &str, name: &str) -> String {
    match crate::media::pdf::text_of(path) {
        Ok(mut text) => {
            let max = crate::media::pdf::MAX_CHARS;
            if let Some(total) = crate::tools::cut_chars(&mut text, max) {
                text.push_str(&format!(
                    "\n[cut: {max} of {total} characters shown; the whole file is {path}]"
                ));
            }
            format!(
                "[the user sent {name}, saved as {path}; its text follows]\n{}",
                crate::tools::untrusted(&format!("file {name}"), &text)
            )
        }
        Err(why) => format!("[the user sent {name}, saved as {path}; {why}]"),
    }
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
        usage: Usage::from_openai(&v["usage"]),
    })
}
