//! A fake model API on 127.0.0.1 speaking both Anthropic Messages (`POST /v1/messages`) and
//! OpenAI chat completions (`POST /v1/chat/completions`), as real HTTP.
//!
//! Tests script it with rules: the first rule whose `when` text occurs in the last user message
//! (or any rule without `when`) answers, once. Without a matching rule it echoes: `echo: <text>`.
//! Every request body is recorded for assertions. Answers can be text, a tool call, an HTTP error
//! (401/429/500/529…, with `retry-after`), and can be delayed or held until the test releases them.
//! A request with `"stream": true` is answered with the format's server-sent events: a text in
//! word-sized deltas at once, or a [`Reply::Stream`] at the pace the test scripts (pauses, a
//! hold until a gate opens, a connection cut mid-answer).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub enum Reply {
    Text(String),
    Tool {
        name: String,
        input: Value,
    },
    Status {
        code: u16,
        retry_after: Option<u64>,
        body: String,
    },
    Delay(Duration, Box<Reply>),
    /// Waits until the test calls [`Gate::open`].
    Hold(Gate, Box<Reply>),
    /// Text written piece by piece, then (optionally) a tool call: streamed as scripted, or
    /// answered whole to a request that does not stream.
    Stream {
        chunks: Vec<Chunk>,
        tool: Option<(String, Value)>,
    },
}

/// A step of a streamed answer.
#[derive(Clone, Debug)]
pub enum Chunk {
    Text(String),
    Pause(Duration),
    /// Waits until the gate opens.
    Hold(Gate),
    /// Breaks the connection (the answer is cut off).
    Cut,
}

impl Reply {
    /// `text` streamed in `pieces` deltas, `pace` apart.
    pub fn paced(text: &str, pieces: usize, pace: Duration) -> Reply {
        let chars: Vec<char> = text.chars().collect();
        let n = pieces.max(1);
        let size = chars.len().div_ceil(n).max(1);
        let mut chunks = Vec::new();
        for (i, c) in chars.chunks(size).enumerate() {
            if i > 0 {
                chunks.push(Chunk::Pause(pace));
            }
            chunks.push(Chunk::Text(c.iter().collect()));
        }
        Reply::Stream { chunks, tool: None }
    }
}

/// A latch a test opens to let held replies through.
#[derive(Clone, Debug)]
pub struct Gate(Arc<Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(0)))
    }
}

impl Gate {
    pub fn open(&self) {
        self.0.add_permits(1_000_000);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Anthropic,
    OpenAi,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub format: Format,
    /// The request asked for a streamed answer.
    pub streamed: bool,
    pub body: Value,
    /// The credential sent: `Bearer …` or the `x-api-key` value.
    pub auth: String,
}

impl Recorded {
    /// The system prompt, whichever format.
    pub fn system(&self) -> String {
        match self.format {
            Format::Anthropic => self.body["system"].as_str().unwrap_or_default().to_string(),
            Format::OpenAi => self.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// The text of the last user message.
    pub fn last_user_text(&self) -> String {
        last_user_text(&self.format, &self.body)
    }

    /// The tool results sent back in this request, in order (their text parts, either format).
    pub fn tool_results(&self) -> Vec<String> {
        let messages = self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if self.format == Format::OpenAi {
            return messages
                .iter()
                .filter(|m| m["role"] == "tool")
                .map(|m| m["content"].as_str().unwrap_or_default().to_string())
                .collect();
        }
        messages
            .iter()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .filter(|b| b["type"] == "tool_result")
            .map(|b| match &b["content"] {
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                c => c.as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// The names of the tools offered in this request, either format.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().or(t["function"]["name"].as_str()))
            .map(str::to_string)
            .collect()
    }

    /// All message texts, in order (tool results included), without the system prompt.
    pub fn transcript(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.body["messages"].as_array().into_iter().flatten() {
            if m["role"] == "system" {
                continue;
            }
            match &m["content"] {
                Value::String(s) => out.push(s.clone()),
                Value::Array(blocks) => {
                    for b in blocks {
                        if let Some(t) = b["text"].as_str() {
                            out.push(t.to_string());
                        } else if let Some(t) = b["content"].as_str() {
                            out.push(t.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

struct Rule {
    when: Option<String>,
    reply: Reply,
}

#[derive(Default)]
struct Inner {
    rules: Vec<Rule>,
    requests: Vec<Recorded>,
    /// Reported `input_tokens` (0 means the default of 10).
    input_tokens: u64,
    /// Reported output tokens (0 means the default of 5) and cache reads and writes.
    output_tokens: u64,
    cache_read: u64,
    cache_write: u64,
    /// Requests carrying this credential get 401 (a revoked token).
    reject_auth: Option<String>,
    /// Scripted answers of the OAuth token endpoint (status, body); 400 when empty.
    oauth: std::collections::VecDeque<(u16, Value)>,
    oauth_calls: usize,
    /// How long an unscripted (echo) answer takes.
    echo_delay: Duration,
    /// When each streamed answer wrote its first text.
    first_text_at: Arc<Mutex<Vec<std::time::Instant>>>,
    /// What `/v1/audio/speech` answers: WAV bytes, or an error status.
    speech: Option<Result<Vec<u8>, u16>>,
    /// The speech requests received (their JSON).
    speech_requests: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeModel {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeModel {
    pub async fn start() -> FakeModel {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/chat/completions", post(openai))
            .route("/oauth/token", post(token))
            .route("/v1/audio/speech", post(speech))
            // Both formats' cheapest authenticated call (what `doctor --online` makes).
            .route("/v1/models", axum::routing::get(models))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, move |t| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = t.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeModel {
            url,
            inner,
            connections,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Answers the next request whose last user message contains `when` (any, if `None`).
    pub fn on(&self, when: Option<&str>, reply: Reply) {
        self.inner.lock().unwrap().rules.push(Rule {
            when: when.map(str::to_string),
            reply,
        });
    }

    /// Unscripted answers (the echo) take this long: keeps work in flight for crash tests.
    pub fn set_echo_delay(&self, d: Duration) {
        self.inner.lock().unwrap().echo_delay = d;
    }

    /// Requests with credential `auth` (e.g. `Bearer old`) are answered 401.
    pub fn reject_auth(&self, auth: &str) {
        self.inner.lock().unwrap().reject_auth = Some(auth.to_string());
    }

    /// The next call of the OAuth token endpoint (`POST /oauth/token`) answers this.
    pub fn on_token(&self, status: u16, body: Value) {
        self.inner.lock().unwrap().oauth.push_back((status, body));
    }

    pub fn token_calls(&self) -> usize {
        self.inner.lock().unwrap().oauth_calls
    }

    /// Makes later answers report this many input tokens (the context size compaction watches).
    pub fn set_input_tokens(&self, n: u64) {
        self.inner.lock().unwrap().input_tokens = n;
    }

    /// Makes later answers report these tokens: input (not cached), output, cache read and
    /// cache written (OpenAI has no cache writes: there the read ones are part of the prompt).
    pub fn set_usage(&self, input: u64, output: u64, cache_read: u64, cache_write: u64) {
        let mut g = self.inner.lock().unwrap();
        (g.input_tokens, g.output_tokens, g.cache_read, g.cache_write) =
            (input, output, cache_read, cache_write);
    }

    /// `/v1/audio/speech` (OpenAI's TTS) answers with this WAV from now on.
    pub fn set_speech(&self, wav: Vec<u8>) {
        self.inner.lock().unwrap().speech = Some(Ok(wav));
    }

    /// `/v1/audio/speech` fails with `status` from now on.
    pub fn fail_speech(&self, status: u16) {
        self.inner.lock().unwrap().speech = Some(Err(status));
    }

    /// The speech requests received, in order (`model`, `voice`, `input`, `response_format`).
    pub fn speech_requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().speech_requests.clone()
    }

    /// When each streamed answer wrote its first text, in order.
    pub fn first_text_at(&self) -> Vec<std::time::Instant> {
        let at = self.inner.lock().unwrap().first_text_at.clone();
        at.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` requests arrived (bounded, so a broken gateway fails the test).
    pub async fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        for _ in 0..400 {
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} model requests, got {}", self.requests().len());
    }
}

fn last_user_text(format: &Format, body: &Value) -> String {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    for m in msgs.iter().rev() {
        if m["role"] != "user" {
            continue;
        }
        let text = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        let _ = format;
        if !text.is_empty() {
            return text;
        }
    }
    String::new()
}

fn pick(inner: &Mutex<Inner>, format: Format, body: Value, auth: String) -> Reply {
    let text = last_user_text(&format, &body);
    let mut g = inner.lock().unwrap();
    let rejected = g.reject_auth.as_deref() == Some(auth.as_str());
    let streamed = body["stream"] == true;
    g.requests.push(Recorded {
        format,
        streamed,
        body,
        auth,
    });
    if rejected {
        return Reply::Status {
            code: 401,
            retry_after: None,
            body: "{\"error\":\"token revoked\"}".into(),
        };
    }
    let idx = g
        .rules
        .iter()
        .position(|r| r.when.as_deref().is_none_or(|w| text.contains(w)));
    match idx {
        Some(i) => g.rules.remove(i).reply,
        None if g.echo_delay.is_zero() => Reply::Text(format!("echo: {text}")),
        None => Reply::Delay(g.echo_delay, Box::new(Reply::Text(format!("echo: {text}")))),
    }
}

async fn resolve(mut reply: Reply) -> Reply {
    loop {
        reply = match reply {
            Reply::Delay(d, r) => {
                tokio::time::sleep(d).await;
                *r
            }
            Reply::Hold(g, r) => {
                let _ = g.0.acquire().await.map(|p| p.forget());
                g.0.add_permits(1);
                *r
            }
            other => return other,
        }
    }
}

fn error(code: u16, retry_after: Option<u64>, body: String) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(s) = retry_after {
        headers.insert("retry-after", s.to_string().parse().unwrap());
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, headers, body).into_response()
}

fn credential(h: &HeaderMap) -> String {
    h.get("authorization")
        .or_else(|| h.get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn models(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let auth = credential(&headers);
    let rejected =
        auth.is_empty() || inner.lock().unwrap().reject_auth.as_deref() == Some(auth.as_str());
    if rejected {
        let body = serde_json::json!({ "error": { "type": "authentication_error", "message": "invalid x-api-key" } });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    axum::Json(serde_json::json!({ "data": [{ "id": "claude-test" }, { "id": "gpt-test" }] }))
        .into_response()
}

async fn token(State(inner): State<Arc<Mutex<Inner>>>) -> Response {
    let mut g = inner.lock().unwrap();
    g.oauth_calls += 1;
    match g.oauth.pop_front() {
        Some((status, body)) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_grant" })),
        )
            .into_response(),
    }
}

async fn speech(State(inner): State<Arc<Mutex<Inner>>>, body: String) -> Response {
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut g = inner.lock().unwrap();
    g.speech_requests.push(v);
    match g.speech.clone() {
        Some(Ok(wav)) => ([(axum::http::header::CONTENT_TYPE, "audio/wav")], wav).into_response(),
        Some(Err(code)) => error(code, None, "{\"error\":{\"message\":\"tts down\"}}".into()),
        None => error(404, None, "no speech configured in the fake".into()),
    }
}

/// The token counts an answer reports.
#[derive(Clone, Copy)]
struct Tokens {
    input: u64,
    output: u64,
    read: u64,
    write: u64,
}

impl Tokens {
    fn of(inner: &Mutex<Inner>) -> Tokens {
        let g = inner.lock().unwrap();
        let or = |n: u64, d: u64| if n == 0 { d } else { n };
        Tokens {
            input: or(g.input_tokens, 10),
            output: or(g.output_tokens, 5),
            read: g.cache_read,
            write: g.cache_write,
        }
    }

    fn anthropic(self, output: u64) -> Value {
        json!({ "input_tokens": self.input, "output_tokens": output,
            "cache_read_input_tokens": self.read, "cache_creation_input_tokens": self.write })
    }

    fn openai(self) -> Value {
        let prompt = self.input + self.read;
        json!({ "prompt_tokens": prompt, "completion_tokens": self.output,
            "total_tokens": prompt + self.output,
            "prompt_tokens_details": { "cached_tokens": self.read } })
    }
}

async fn anthropic(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(400, None, "bad json".into());
    };
    let n = body["messages"].as_array().map_or(0, Vec::len);
    let tokens = Tokens::of(&inner);
    let stream = body["stream"] == true;
    let reply = resolve(pick(&inner, Format::Anthropic, body, credential(&headers))).await;
    let (chunks, tool) = match reply {
        Reply::Text(t) => (words(&t), None),
        Reply::Tool { name, input } => (Vec::new(), Some((name, input))),
        Reply::Stream { chunks, tool } => (chunks, tool),
        Reply::Status {
            code,
            retry_after,
            body,
        } => return error(code, retry_after, body),
        Reply::Delay(..) | Reply::Hold(..) => unreachable!(),
    };
    let tool_id = format!("toolu_{n}");
    if stream {
        let at = inner.lock().unwrap().first_text_at.clone();
        return sse(anthropic_events(chunks, tool, tool_id, tokens), at);
    }
    let text = whole_text(&chunks);
    let mut content = Vec::new();
    if !text.is_empty() || tool.is_none() {
        content.push(json!({ "type": "text", "text": text }));
    }
    if let Some((name, input)) = &tool {
        content.push(json!({ "type": "tool_use", "id": tool_id, "name": name, "input": input }));
    }
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    axum::Json(json!({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
        "content": content, "stop_reason": stop,
        "usage": tokens.anthropic(tokens.output)
    }))
    .into_response()
}

/// A text as a stream writes it: word by word.
fn words(t: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in t.chars() {
        cur.push(c);
        if c == ' ' && cur.len() > 1 {
            out.push(Chunk::Text(std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(Chunk::Text(cur));
    }
    out
}

fn whole_text(chunks: &[Chunk]) -> String {
    chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// One step of a scripted stream: an event to write, a pause, or the end of the connection.
enum Step {
    /// A text delta (its time is recorded when it is the answer's first).
    Text(Option<&'static str>, Value),
    Event(Option<&'static str>, Value),
    Raw(String),
    Wait(Chunk),
}

fn steps_of(chunks: Vec<Chunk>, text: impl Fn(String) -> Step) -> Vec<Step> {
    chunks
        .into_iter()
        .map(|c| match c {
            Chunk::Text(t) => text(t),
            other => Step::Wait(other),
        })
        .collect()
}

fn anthropic_events(
    chunks: Vec<Chunk>,
    tool: Option<(String, Value)>,
    tool_id: String,
    tokens: Tokens,
) -> Vec<Step> {
    let ev = |name: &'static str, v: Value| Step::Event(Some(name), v);
    let mut out = vec![ev(
        "message_start",
        json!({ "type": "message_start", "message": { "id": "msg_fake", "type": "message",
            "role": "assistant", "model": "fake", "content": [], "stop_reason": null,
            "usage": tokens.anthropic(1) } }),
    )];
    let has_text = chunks.iter().any(|c| matches!(c, Chunk::Text(_))) || tool.is_none();
    let mut index = 0;
    if has_text {
        out.push(ev(
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0,
                "content_block": { "type": "text", "text": "" } }),
        ));
        out.push(Step::Raw(
            "event: ping\ndata: {\"type\": \"ping\"}\n\n".into(),
        ));
        out.extend(steps_of(chunks, |t| {
            Step::Text(
                Some("content_block_delta"),
                json!({ "type": "content_block_delta", "index": 0,
                    "delta": { "type": "text_delta", "text": t } }),
            )
        }));
        out.push(ev(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": 0 }),
        ));
        index = 1;
    } else {
        out.extend(steps_of(chunks, |_| unreachable!()));
    }
    if let Some((name, input)) = &tool {
        out.push(ev(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index,
                "content_block": { "type": "tool_use", "id": tool_id, "name": name, "input": {} } }),
        ));
        // The arguments in two pieces, as the API splits them.
        let args = input.to_string();
        let mid = args
            .char_indices()
            .nth(args.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        for piece in [&args[..mid], &args[mid..]] {
            out.push(ev(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index,
                    "delta": { "type": "input_json_delta", "partial_json": piece } }),
            ));
        }
        out.push(ev(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        ));
    }
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    out.push(ev(
        "message_delta",
        json!({ "type": "message_delta", "delta": { "stop_reason": stop },
            "usage": { "output_tokens": tokens.output } }),
    ));
    out.push(ev("message_stop", json!({ "type": "message_stop" })));
    out
}

fn openai_events(
    chunks: Vec<Chunk>,
    tool: Option<(String, Value)>,
    call_id: String,
    tokens: Tokens,
) -> Vec<Step> {
    let chunk = |delta: Value, finish: Value| {
        Step::Event(
            None,
            json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] }),
        )
    };
    let mut out = vec![chunk(
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
    )];
    out.extend(steps_of(chunks, |t| {
        match chunk(json!({ "content": t }), Value::Null) {
            Step::Event(n, v) => Step::Text(n, v),
            other => other,
        }
    }));
    if let Some((name, input)) = &tool {
        out.push(chunk(
            json!({ "tool_calls": [{ "index": 0, "id": call_id, "type": "function",
                "function": { "name": name, "arguments": "" } }] }),
            Value::Null,
        ));
        let args = input.to_string();
        let mid = args
            .char_indices()
            .nth(args.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        for piece in [&args[..mid], &args[mid..]] {
            out.push(chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                Value::Null,
            ));
        }
    }
    let finish = if tool.is_some() { "tool_calls" } else { "stop" };
    out.push(chunk(json!({}), json!(finish)));
    out.push(Step::Event(
        None,
        json!({ "id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
            "usage": tokens.openai() }),
    ));
    out.push(Step::Raw("data: [DONE]\n\n".into()));
    out
}

/// Writes `steps` as a `text/event-stream` body, pausing where scripted; a cut ends the body
/// with an error, which drops the connection mid-answer.
fn sse(steps: Vec<Step>, first_text_at: Arc<Mutex<Vec<std::time::Instant>>>) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut first = true;
        for step in steps {
            let bytes = match step {
                Step::Text(name, v) => {
                    if first {
                        first = false;
                        first_text_at
                            .lock()
                            .unwrap()
                            .push(std::time::Instant::now());
                    }
                    match name {
                        Some(n) => format!("event: {n}\ndata: {v}\n\n"),
                        None => format!("data: {v}\n\n"),
                    }
                }
                Step::Event(name, v) => match name {
                    Some(n) => format!("event: {n}\ndata: {v}\n\n"),
                    None => format!("data: {v}\n\n"),
                },
                Step::Raw(r) => r,
                Step::Wait(Chunk::Pause(d)) => {
                    tokio::time::sleep(d).await;
                    continue;
                }
                Step::Wait(Chunk::Hold(g)) => {
                    let _ = g.0.acquire().await.map(|p| p.forget());
                    g.0.add_permits(1);
                    continue;
                }
                Step::Wait(Chunk::Cut) => {
                    let _ = tx
                        .send(Err(std::io::Error::other("fake model: cut off")))
                        .await;
                    return;
                }
                Step::Wait(Chunk::Text(_)) => continue,
            };
            if tx.send(Ok(bytes.into())).await.is_err() {
                return;
            }
        }
    });
    let body =
        axum::body::Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        body,
    )
        .into_response()
}

async fn openai(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(400, None, "bad json".into());
    };
    let n = body["messages"].as_array().map_or(0, Vec::len);
    let tokens = Tokens::of(&inner);
    let stream = body["stream"] == true;
    let reply = resolve(pick(&inner, Format::OpenAi, body, credential(&headers))).await;
    let (chunks, tool) = match reply {
        Reply::Text(t) => (words(&t), None),
        Reply::Tool { name, input } => (Vec::new(), Some((name, input))),
        Reply::Stream { chunks, tool } => (chunks, tool),
        Reply::Status {
            code,
            retry_after,
            body,
        } => return error(code, retry_after, body),
        Reply::Delay(..) | Reply::Hold(..) => unreachable!(),
    };
    let call_id = format!("call_{n}");
    if stream {
        let at = inner.lock().unwrap().first_text_at.clone();
        return sse(openai_events(chunks, tool, call_id, tokens), at);
    }
    let text = whole_text(&chunks);
    let message = match &tool {
        None => json!({ "role": "assistant", "content": text }),
        Some((name, input)) => json!({
            "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) },
            "tool_calls": [{ "id": call_id, "type": "function",
                "function": { "name": name, "arguments": input.to_string() } }]
        }),
    };
    axum::Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
        "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
        "usage": tokens.openai()
    }))
    .into_response()
}
