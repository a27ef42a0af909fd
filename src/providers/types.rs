//! Our provider-neutral conversation types. Each provider module converts to and from its wire
//! format; nothing else sees Anthropic's or OpenAI's JSON.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One piece of a message. Tool results travel in user messages, as in Anthropic's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
        /// Images the tool returned (an MCP screenshot tool, say), for vision models.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<Image>,
    },
    /// An image a user sent, stored in the workspace (read when a request is made, so the
    /// stored history stays small).
    ImageFile {
        path: String,
        media_type: String,
    },
    /// A PDF a user sent, stored in the workspace: a document block for providers that read
    /// PDFs (Anthropic), a note of where it is for the others.
    DocumentFile {
        path: String,
        media_type: String,
        name: String,
    },
}

/// An image as the providers take it: base64 data and its media type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub media_type: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }

    /// The message's text blocks joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A tool the model may call, with a JSON Schema for its input. The schema is shared and kept
/// as the JSON text it is sent as: every turn offers the same tools, and building and copying
/// their schemas (maps of maps) was ~8 % of the CPU of a message; writing them out again from a
/// `Value` on every request was another ~1 %.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "shared_raw")]
    pub input_schema: std::sync::Arc<serde_json::value::RawValue>,
}

impl ToolSpec {
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        schema: &serde_json::Value,
    ) -> Self {
        let raw = match serde_json::value::to_raw_value(schema) {
            Ok(raw) => raw,
            // Not reachable: a `Value` always serializes (its keys are strings).
            Err(_) => serde_json::value::RawValue::NULL.to_owned(),
        };
        Self {
            name: name.into(),
            description: description.into(),
            input_schema: raw.into(),
        }
    }
}

fn shared_raw<S: serde::Serializer>(
    v: &std::sync::Arc<serde_json::value::RawValue>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&**v, s)
}

#[derive(Debug, Clone)]
pub struct Request {
    pub model: String,
    pub system: String,
    /// Shared, not copied: an agent loop hands the same growing history to every step (and a
    /// fallback model gets the same one), and a history can be hundreds of turns long.
    pub messages: std::sync::Arc<Vec<Message>>,
    /// Shared like `messages`: every step of a turn offers the same tools.
    pub tools: std::sync::Arc<Vec<ToolSpec>>,
    pub max_tokens: u32,
}

/// What one model call used, as the provider reported it. `input_tokens` are the prompt tokens
/// billed at the full rate; tokens read from or written to the provider's prompt cache are
/// counted apart, because they are priced apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    /// The whole prompt, cached or not (the context size compaction watches).
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Anthropic's `usage` object (a message's, or a stream event's): fields it lacks are kept.
    pub(crate) fn merge_anthropic(&mut self, u: &serde_json::Value) {
        let set = |field: &mut u64, key: &str| {
            if let Some(n) = u[key].as_u64() {
                *field = n;
            }
        };
        set(&mut self.input_tokens, "input_tokens");
        set(&mut self.output_tokens, "output_tokens");
        set(&mut self.cache_read_tokens, "cache_read_input_tokens");
        set(&mut self.cache_write_tokens, "cache_creation_input_tokens");
    }

    /// OpenAI's `usage` object: `prompt_tokens` include the cached ones, which are split out.
    pub(crate) fn from_openai(u: &serde_json::Value) -> Usage {
        let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
        let cached = u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0)
            .min(prompt);
        Usage {
            input_tokens: prompt - cached,
            output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub content: Vec<Block>,
    pub usage: Usage,
}

/// Where a streamed answer's text goes as the model writes it (a live preview in the chat).
pub trait TextSink: Send + Sync {
    /// More text of the answer being written.
    fn delta(&self, text: &str);
    /// The answer starts over (a retry, or the next model after a failure): what came so far
    /// is not part of it.
    fn restart(&self);
}

/// Why a model call failed, classified so failover knows what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// Missing, wrong or revoked credentials (401/403): another try will not help.
    #[error("{0}")]
    Auth(String),
    /// 429; `retry_after` from the response when given.
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    /// 529 / "overloaded".
    #[error("overloaded")]
    Overloaded,
    /// Other 5xx.
    #[error("server error {status}")]
    Server { status: u16 },
    /// The prompt is longer than the model's context window.
    #[error("context too long")]
    ContextTooLong,
    /// Connection failures and timeouts.
    #[error("network error: {0}")]
    Network(String),
    /// A request the provider refused (400/404): fix the config or the request.
    #[error("request refused: {0}")]
    Refused(String),
    /// A response we could not understand.
    #[error("unreadable response: {0}")]
    BadResponse(String),
    /// Skipped: this provider failed moments ago and is given time to recover.
    #[error("cooling down after: {0}")]
    CoolingDown(String),
}

impl ProviderError {
    /// Whether the same request may succeed if tried again soon.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Overloaded | Self::Server { .. } | Self::Network(_)
        )
    }

    /// Classifies an HTTP error status and body.
    pub fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> Self {
        let lower = body.to_lowercase();
        let snippet: String = body.chars().take(200).collect();
        match status {
            401 | 403 => Self::Auth(format!("authentication failed ({status})")),
            429 => Self::RateLimited { retry_after },
            529 => Self::Overloaded,
            503 if lower.contains("overloaded") => Self::Overloaded,
            500..=599 => Self::Server { status },
            400 | 413
                if lower.contains("context")
                    && (lower.contains("too long")
                        || lower.contains("length")
                        || lower.contains("exceed")) =>
            {
                Self::ContextTooLong
            }
            _ => Self::Refused(format!("{status}: {snippet}")),
        }
    }
}
