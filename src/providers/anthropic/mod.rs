//! Anthropic's Messages API (`POST {baseUrl}/v1/messages`), with tool use, whole or streamed
//! (`stream`: its server-sent events).

use super::credentials::{Credential, CredentialSource};
mod stream;

use super::http::{Http, events, is_event_stream, send_refreshing, text};
use super::{Block, Provider, ProviderError, Request, Response, TextSink, Usage};
use async_trait::async_trait;
use serde_json::Value;

pub struct Anthropic {
    http: Http,
    base_url: String,
    cred: CredentialSource,
}

impl Anthropic {
    pub fn new(http: Http, base_url: Option<&str>, cred: CredentialSource) -> Self {
        Self {
            http,
            base_url: base_url
                .unwrap_or("https://api.anthropic.com")
                .trim_end_matches('/')
                .to_string(),
            cred,
        }
    }
}

impl Anthropic {
    /// Posts the request (streamed or not), refreshing an OAuth token once when it was revoked
    /// before its expiry; a success to read, or the failure classified.
    async fn send(&self, req: &Request, stream: bool) -> Result<reqwest::Response, ProviderError> {
        let (token, oauth) = match self.cred.current() {
            Credential::None => {
                return Err(ProviderError::Auth(
                    "no API key (set providers.anthropic.apiKey or run `switchboard auth anthropic`)"
                        .into(),
                ));
            }
            Credential::ApiKey(k) => (k, None),
            Credential::OAuth(o) => (o.access_token().await?, Some(o)),
        };
        let body = bytes::Bytes::from(to_wire(req, stream)?);
        let url = format!("{}/v1/messages", self.base_url);
        send_refreshing(Some(token), oauth.as_deref(), |token| {
            let http = self
                .http
                .post(url.clone())
                .header("anthropic-version", "2023-06-01")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            let token = token.unwrap_or_default();
            match oauth {
                Some(_) => http
                    .bearer_auth(token)
                    .header("anthropic-beta", "oauth-2025-04-20"),
                None => http.header("x-api-key", token),
            }
        })
        .await
    }
}

#[async_trait]
impl Provider for Anthropic {
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

/// The request body, serialized straight from the history it borrows: no `serde_json::Value`
/// tree and no copy of the messages (a long history was held four times over per call). Our
/// `Block`s serialize as Anthropic's content blocks; consecutive messages of one role merge.
fn to_wire<'a>(req: &'a Request, stream: bool) -> Result<Vec<u8>, ProviderError> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        model: &'a str,
        max_tokens: u32,
        system: &'a str,
        messages: Vec<Wire<'a>>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        tools: &'a [super::ToolSpec],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stream: bool,
    }
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        role: &'static str,
        content: Vec<WireBlock<'a>>,
    }
    /// A block as stored, or a tool result with images, whose `content` Anthropic wants as a
    /// list of text and image blocks.
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum WireBlock<'a> {
        Plain(&'a Block),
        Value(Value),
        WithImages {
            #[serde(rename = "type")]
            kind: &'static str,
            tool_use_id: &'a str,
            content: Vec<Value>,
            is_error: bool,
        },
    }
    let wire = |b: &'a Block| match b {
        Block::ToolResult {
            tool_use_id,
            content,
            is_error,
            images,
        } if !images.is_empty() => {
            let mut parts = vec![serde_json::json!({ "type": "text", "text": content })];
            parts.extend(images.iter().map(|i| {
                serde_json::json!({ "type": "image", "source": {
                    "type": "base64", "media_type": i.media_type, "data": i.data } })
            }));
            WireBlock::WithImages {
                kind: "tool_result",
                tool_use_id,
                content: parts,
                is_error: *is_error,
            }
        }
        Block::ImageFile { path, media_type } => match crate::media::base64_of(path) {
            Some(data) => WireBlock::Value(serde_json::json!({ "type": "image", "source": {
                "type": "base64", "media_type": media_type, "data": data } })),
            None => WireBlock::Value(serde_json::json!({ "type": "text",
                "text": format!("[an image the user sent earlier is no longer available: {path}]") })),
        },
        Block::DocumentFile {
            path,
            media_type,
            name,
        } => match crate::media::base64_of(path) {
            Some(data) => WireBlock::Value(serde_json::json!({ "type": "document", "title": name,
                "source": { "type": "base64", "media_type": media_type, "data": data } })),
            None => WireBlock::Value(serde_json::json!({ "type": "text",
                "text": format!("[{name}, sent earlier, is no longer available: {path}]") })),
        },
        b => WireBlock::Plain(b),
    };
    let mut messages: Vec<Wire> = Vec::with_capacity(req.messages.len());
    for m in req.messages.iter() {
        match messages.last_mut() {
            Some(last) if last.role == m.role.as_str() => {
                last.content.extend(m.content.iter().map(wire))
            }
            _ => messages.push(Wire {
                role: m.role.as_str(),
                content: m.content.iter().map(wire).collect(),
            }),
        }
    }
    serde_json::to_vec(&Body {
        model: &req.model,
        max_tokens: req.max_tokens,
        system: &req.system,
        messages,
        tools: &req.tools[..],
        stream,
    })
    .map_err(|e| ProviderError::BadResponse(format!("cannot encode the request: {e}")))
}

fn from_wire(text: &str) -> Result<Response, ProviderError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ProviderError::BadResponse(e.to_string()))?;
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| ProviderError::BadResponse("no `content` array".into()))?;
    let mut content = Vec::new();
    for b in blocks {
        match b["type"].as_str() {
            Some("text") => content.push(Block::Text {
                text: b["text"].as_str().unwrap_or_default().to_string(),
            }),
            Some("tool_use") => content.push(Block::ToolUse {
                id: b["id"].as_str().unwrap_or_default().to_string(),
                name: b["name"].as_str().unwrap_or_default().to_string(),
                input: b["input"].clone(),
            }),
            _ => {} // thinking and future block types are not part of the conversation we keep
        }
    }
    let mut usage = Usage::default();
    usage.merge_anthropic(&v["usage"]);
    Ok(Response { content, usage })
}
