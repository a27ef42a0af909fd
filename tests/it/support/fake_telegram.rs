//! A fake Telegram Bot API on 127.0.0.1: real HTTP with the Bot API's JSON shapes, for teloxide
//! to talk to through `channels.telegram.apiUrl`.
//!
//! It implements `getMe`, `getUpdates` (long polling with `offset` confirmation and `timeout`),
//! `sendMessage` (with inline keyboards), `editMessageText` (with "message is not modified"),
//! `sendMessageDraft`, `deleteMessage`, `answerCallbackQuery`, `sendChatAction`,
//! `setMyCommands`, `deleteWebhook`, `getFile` and file download; tests can press buttons.
//! Tests queue user updates (checked against teloxide's own `Update` type, since teloxide drops
//! updates it cannot parse), read what the bot sent, and inject failures per method: an HTTP error
//! with Telegram's error body (429 with `retry_after`, 400, 502), malformed JSON, or a dropped
//! connection. Method names match case-insensitively (teloxide sends `SendMessage`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub use super::telegram_html::telegram_html;

pub const BOT_ID: i64 = 999;
pub const BOT_USERNAME: &str = "jarvis_bot";

#[derive(Clone, Debug)]
pub enum Fault {
    /// An error answer: status, Telegram description, optional `retry_after`.
    Error {
        code: u16,
        description: String,
        retry_after: Option<u64>,
    },
    /// A 200 whose body is not JSON.
    Malformed,
    /// Close the connection without answering, before acting.
    Drop,
    /// Act (post the message), then close the connection without answering: the ambiguous
    /// failure, where the client cannot know the platform acted.
    DropAfter,
}

/// Random faults on a share of calls, reproducible from a seed.
struct Chaos {
    rate: f64,
    methods: Vec<String>,
    rng: rand::rngs::StdRng,
    /// Faults injected, by kind.
    injected: HashMap<&'static str, u32>,
}

#[derive(Clone, Debug)]
pub struct Sent {
    pub chat_id: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    pub thread: Option<i64>,
    pub reply_to: Option<i64>,
    pub at: Instant,
    /// The message id the fake gave it.
    pub id: i64,
    /// Its inline keyboard, as sent or as last edited (`None`: no buttons).
    pub markup: Option<Value>,
}

/// An `editMessageText` the bot made.
#[derive(Clone, Debug)]
pub struct Edit {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub markup: Option<Value>,
}

#[derive(Default)]
struct Inner {
    next_update: i64,
    next_message: i64,
    updates: Vec<Value>,
    sent: Vec<Sent>,
    /// Every sendMessage attempt (including refused ones), with its time.
    attempts: Vec<Instant>,
    actions: Vec<(i64, String)>,
    commands: Vec<String>,
    /// `setWebhook` calls: the URL and the secret token.
    webhooks: Vec<(String, String)>,
    /// Whether a webhook is set now: as on the real Bot API, getUpdates is refused (409) until
    /// `deleteWebhook`.
    webhook_set: bool,
    faults: HashMap<String, VecDeque<Fault>>,
    files: HashMap<String, (String, Vec<u8>)>,
    /// File downloads served (`/file/bot<token>/<path>`).
    downloads: u32,
    confirmed: i64,
    /// Bot API calls received, of any method.
    calls: u64,
    /// Calls received, by (lower-cased) method.
    by_method: HashMap<String, u64>,
    /// When the first `getUpdates` arrived (a bot is polling from then on).
    first_poll: Option<Instant>,
    /// Messages (their `reply_to`) posted by a sendMessage whose answer was then dropped.
    acted_then_dropped: Vec<i64>,
    chaos: Option<Chaos>,
    edits: Vec<Edit>,
    /// `sendMessageDraft` calls: (chat, draft id, text), and when each came.
    drafts: Vec<(i64, i64, String)>,
    drafts_at: Vec<Instant>,
    /// Messages deleted by the bot: (chat, message id).
    deleted: Vec<(i64, i64)>,
    files_sent: Vec<SentFile>,
    /// `answerCallbackQuery` calls: (callback query id, text shown).
    answers: Vec<(String, Option<String>)>,
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

type St = (Arc<Mutex<Inner>>, Arc<Notify>);

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let inner = Arc::new(Mutex::new(Inner {
            next_update: 1,
            next_message: 1000,
            ..Inner::default()
        }));
        let notify = Arc::new(Notify::new());
        let app = Router::new()
            .route("/{bot}/{method}", post(method).get(method))
            .route("/file/{bot}/{*path}", get(file))
            .with_state((inner.clone(), notify.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, move |t| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = t.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeTelegram {
            url,
            inner,
            notify,
            connections,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues a raw update (its `update_id` is assigned here) after checking that teloxide can
    /// parse it. Returns the update id.
    pub fn push(&self, mut update: Value) -> i64 {
        let mut g = self.inner.lock().unwrap();
        let id = g.next_update;
        g.next_update += 1;
        update["update_id"] = json!(id);
        let text = update.to_string();
        if let Err(e) = serde_json::from_str::<switchboard_telegram::teloxide::types::Update>(&text)
        {
            panic!("fixture does not match teloxide's Update: {e}\n{text}");
        }
        g.updates.push(update);
        drop(g);
        self.notify.notify_waiters();
        id
    }

    /// Queues an update as is, without checking it against teloxide's types: for updates of a
    /// shape the bot must survive (kinds it does not know, fields of the wrong type).
    pub fn push_raw(&self, mut update: Value) -> i64 {
        let mut g = self.inner.lock().unwrap();
        let id = g.next_update;
        g.next_update += 1;
        update["update_id"] = json!(id);
        g.updates.push(update);
        drop(g);
        self.notify.notify_waiters();
        id
    }

    /// Updates queued and not yet confirmed by the bot.
    pub fn unconfirmed(&self) -> usize {
        self.inner.lock().unwrap().updates.len()
    }

    fn next_message_id(&self) -> i64 {
        let mut g = self.inner.lock().unwrap();
        g.next_message += 1;
        g.next_message
    }

    /// A private message from user `user`; returns its message id.
    pub fn dm(&self, user: i64, text: &str) -> i64 {
        let id = self.next_message_id();
        self.push(json!({ "message": {
            "message_id": id, "date": 1_700_000_000,
            "chat": { "id": user, "type": "private", "first_name": format!("User{user}") },
            "from": { "id": user, "is_bot": false, "first_name": format!("User{user}") },
            "text": text
        }}));
        id
    }

    /// A message in group `chat` (a forum topic when `thread` is set).
    pub fn group(&self, chat: i64, user: i64, text: &str, thread: Option<i64>) -> i64 {
        let id = self.next_message_id();
        let mut msg = json!({
            "message_id": id, "date": 1_700_000_000,
            "chat": { "id": chat, "type": "supergroup", "title": "Team", "is_forum": thread.is_some() },
            "from": { "id": user, "is_bot": false, "first_name": format!("User{user}") },
            "text": text
        });
        if let Some(t) = thread {
            msg["message_thread_id"] = json!(t);
            msg["is_topic_message"] = json!(true);
        }
        self.push(json!({ "message": msg }));
        id
    }

    /// A voice note from `user` whose file holds `bytes`.
    pub fn voice(&self, user: i64, file_id: &str, bytes: Vec<u8>, duration: u32) -> i64 {
        let size = bytes.len() as u64;
        self.voice_sized(user, file_id, bytes, duration, size)
    }

    /// A voice note whose `file_size` says `size` (to test limits without sending megabytes).
    pub fn voice_sized(
        &self,
        user: i64,
        file_id: &str,
        bytes: Vec<u8>,
        duration: u32,
        size: u64,
    ) -> i64 {
        let id = self.next_message_id();
        self.inner
            .lock()
            .unwrap()
            .files
            .insert(file_id.to_string(), (format!("voice/{file_id}.oga"), bytes));
        self.push(json!({ "message": {
            "message_id": id, "date": 1_700_000_000,
            "chat": { "id": user, "type": "private", "first_name": "U" },
            "from": { "id": user, "is_bot": false, "first_name": "U" },
            "voice": { "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                       "duration": duration, "mime_type": "audio/ogg", "file_size": size }
        }}));
        id
    }

    /// A photo from `user` with `caption`, as Telegram sends it: a thumbnail and the full size
    /// (`bytes`, announced as `size` bytes). Returns the message id.
    pub fn photo(&self, user: i64, file_id: &str, bytes: Vec<u8>, size: u64, caption: &str) -> i64 {
        let id = self.next_message_id();
        self.inner.lock().unwrap().files.insert(
            file_id.to_string(),
            (format!("photos/{file_id}.jpg"), bytes),
        );
        let mut m = json!({
            "message_id": id, "date": 1_700_000_000,
            "chat": { "id": user, "type": "private", "first_name": "U" },
            "from": { "id": user, "is_bot": false, "first_name": "U" },
            "photo": [
                { "file_id": format!("{file_id}-thumb"), "file_unique_id": format!("t-{file_id}"),
                  "width": 90, "height": 60, "file_size": 900 },
                { "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                  "width": 1200, "height": 800, "file_size": size },
            ]
        });
        if !caption.is_empty() {
            m["caption"] = json!(caption);
        }
        self.push(json!({ "message": m }));
        id
    }

    /// Several photos sent at once (an album: one message each, sharing a `media_group_id`), the
    /// caption on the first, all queued together as Telegram delivers them.
    pub fn album(&self, user: i64, photos: Vec<(&str, Vec<u8>)>, caption: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut g = self.inner.lock().unwrap();
        for (i, (file_id, bytes)) in photos.into_iter().enumerate() {
            g.next_message += 1;
            let id = g.next_message;
            ids.push(id);
            let size = bytes.len();
            g.files.insert(
                file_id.to_string(),
                (format!("photos/{file_id}.jpg"), bytes),
            );
            let mut m = json!({
                "message_id": id, "date": 1_700_000_000, "media_group_id": "album-1",
                "chat": { "id": user, "type": "private", "first_name": "U" },
                "from": { "id": user, "is_bot": false, "first_name": "U" },
                "photo": [{ "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                            "width": 640, "height": 480, "file_size": size }]
            });
            if i == 0 && !caption.is_empty() {
                m["caption"] = json!(caption);
            }
            let uid = g.next_update;
            g.next_update += 1;
            let update = json!({ "update_id": uid, "message": m });
            if let Err(e) = serde_json::from_value::<switchboard_telegram::teloxide::types::Update>(
                update.clone(),
            ) {
                panic!("fixture does not match teloxide's Update: {e}\n{update}");
            }
            g.updates.push(update);
        }
        drop(g);
        self.notify.notify_waiters();
        ids
    }

    /// A document from `user` (a PDF, a text file) with its name and type.
    pub fn document(
        &self,
        user: i64,
        file_id: &str,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
        caption: &str,
    ) -> i64 {
        let id = self.next_message_id();
        let size = bytes.len();
        self.inner
            .lock()
            .unwrap()
            .files
            .insert(file_id.to_string(), (format!("documents/{name}"), bytes));
        let mut m = json!({
            "message_id": id, "date": 1_700_000_000,
            "chat": { "id": user, "type": "private", "first_name": "U" },
            "from": { "id": user, "is_bot": false, "first_name": "U" },
            "document": { "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                          "file_name": name, "mime_type": mime, "file_size": size }
        });
        if !caption.is_empty() {
            m["caption"] = json!(caption);
        }
        self.push(json!({ "message": m }));
        id
    }

    /// The next calls of `method` (case-insensitive) fail with `fault`, once each.
    pub fn fail(&self, method: &str, fault: Fault) {
        self.inner
            .lock()
            .unwrap()
            .faults
            .entry(method.to_lowercase())
            .or_default()
            .push_back(fault);
    }

    /// How many file downloads were served.
    /// `user` presses the inline button with `data` under bot message `message_id` in `chat`
    /// (a private chat when `chat` > 0). Returns the callback query id.
    pub fn press(&self, chat: i64, user: i64, message_id: i64, data: &str) -> String {
        let query = format!("cb-{user}-{message_id}-{}", self.next_message_id());
        let chat_json = if chat > 0 {
            json!({ "id": chat, "type": "private", "first_name": "U" })
        } else {
            json!({ "id": chat, "type": "supergroup", "title": "Team" })
        };
        self.push(json!({ "callback_query": {
            "id": query,
            "from": { "id": user, "is_bot": false, "first_name": format!("User{user}") },
            "message": { "message_id": message_id, "date": 1_700_000_000, "chat": chat_json,
                         "from": bot_user(), "text": "question" },
            "chat_instance": "ci-1",
            "data": data,
        } }));
        query
    }

    /// Files the bot posted (`sendPhoto`, `sendDocument`).
    pub fn files_sent(&self) -> Vec<SentFile> {
        self.inner.lock().unwrap().files_sent.clone()
    }

    pub fn edits(&self) -> Vec<Edit> {
        self.inner.lock().unwrap().edits.clone()
    }

    /// `sendMessageDraft` calls: (chat, draft id, text), in order.
    pub fn drafts(&self) -> Vec<(i64, i64, String)> {
        self.inner.lock().unwrap().drafts.clone()
    }

    /// When each `sendMessageDraft` came, in order.
    pub fn drafts_at(&self) -> Vec<Instant> {
        self.inner.lock().unwrap().drafts_at.clone()
    }

    /// Messages the bot deleted: (chat, message id).
    pub fn deleted(&self) -> Vec<(i64, i64)> {
        self.inner.lock().unwrap().deleted.clone()
    }

    /// `answerCallbackQuery` calls: (query id, text shown to the presser).
    pub fn answers(&self) -> Vec<(String, Option<String>)> {
        self.inner.lock().unwrap().answers.clone()
    }

    pub fn downloads(&self) -> u32 {
        self.inner.lock().unwrap().downloads
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    pub fn sent_to(&self, chat: i64) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.chat_id == chat)
            .collect()
    }

    pub fn send_attempts(&self) -> Vec<Instant> {
        self.inner.lock().unwrap().attempts.clone()
    }

    pub fn actions(&self) -> Vec<(i64, String)> {
        self.inner.lock().unwrap().actions.clone()
    }

    /// A webhook left set (by an earlier run in webhook mode): getUpdates is refused until the
    /// bot deletes it.
    pub fn leave_webhook(&self, url: &str) {
        let mut g = self.inner.lock().unwrap();
        g.webhooks.push((url.to_string(), String::new()));
        g.webhook_set = true;
    }

    /// The webhooks set, in order: (url, secret token).
    pub fn webhooks(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().webhooks.clone()
    }

    pub fn commands(&self) -> Vec<String> {
        self.inner.lock().unwrap().commands.clone()
    }

    /// The highest offset the bot has confirmed.
    /// Calls received so far, by lower-cased method name (`sendmessage`, `getupdates`, …).
    pub fn calls_by_method(&self) -> HashMap<String, u64> {
        self.inner.lock().unwrap().by_method.clone()
    }

    /// When the first `getUpdates` arrived, if one has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.inner.lock().unwrap().first_poll
    }

    /// Forgets the first `getUpdates`, so the next one is recorded (a bot's restart).
    pub fn reset_first_poll(&self) {
        self.inner.lock().unwrap().first_poll = None;
    }

    pub fn confirmed(&self) -> i64 {
        self.inner.lock().unwrap().confirmed
    }

    /// From now on, `rate` of the calls of `methods` (lowercase) fail at random with a 429
    /// (`retry_after` 1), a 502, a 500 with an HTML body, malformed JSON, or a dropped connection
    /// before or after acting.
    pub fn chaos(&self, rate: f64, methods: &[&str], seed: u64) {
        use rand::SeedableRng;
        self.inner.lock().unwrap().chaos = Some(Chaos {
            rate,
            methods: methods.iter().map(|m| m.to_lowercase()).collect(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            injected: HashMap::new(),
        });
    }

    /// The `reply_to` of every message posted by a call whose answer was dropped after acting.
    pub fn acted_then_dropped(&self) -> Vec<i64> {
        self.inner.lock().unwrap().acted_then_dropped.clone()
    }

    /// Faults injected so far by [`Self::chaos`], by kind.
    pub fn chaos_injected(&self) -> HashMap<&'static str, u32> {
        let g = self.inner.lock().unwrap();
        g.chaos
            .as_ref()
            .map(|c| c.injected.clone())
            .unwrap_or_default()
    }

    /// Waits until no call has arrived for 150 ms: after a kill, requests the dead process had
    /// already written are still being read and handled here for a moment.
    pub async fn settle(&self) {
        let mut last = u64::MAX;
        for _ in 0..100 {
            let now = self.inner.lock().unwrap().calls;
            if now == last {
                return;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits (bounded) until `pred` holds for what was sent.
    pub async fn wait_sent(&self, pred: impl Fn(&[Sent]) -> bool) -> Vec<Sent> {
        self.wait_sent_up_to(300, pred).await
    }

    /// As [`Self::wait_sent`], polling `polls` times 25 ms apart (for slow work: transcription).
    pub async fn wait_sent_up_to(&self, polls: u32, pred: impl Fn(&[Sent]) -> bool) -> Vec<Sent> {
        for _ in 0..polls {
            let s = self.sent();
            if pred(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "telegram never received the expected messages; sent: {:#?}",
            self.sent()
        );
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

fn fault_response(f: Fault) -> Response {
    match f {
        Fault::Error {
            code,
            description,
            retry_after,
        } => {
            let mut body = json!({ "ok": false, "error_code": code, "description": description });
            if let Some(s) = retry_after {
                body["parameters"] = json!({ "retry_after": s });
            }
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                axum::Json(body),
            )
                .into_response()
        }
        Fault::Malformed => (StatusCode::OK, "{\"ok\": tru").into_response(),
        Fault::Drop | Fault::DropAfter => drop_connection(),
    }
}

fn bot_user() -> Value {
    json!({ "id": BOT_ID, "is_bot": true, "first_name": "Jarvis", "username": BOT_USERNAME })
}

/// The fields and the uploaded file of a `multipart/form-data` body (file uploads).
pub async fn parse_multipart(
    headers: &axum::http::HeaderMap,
    body: Bytes,
) -> Option<(Value, Option<Upload>)> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    let boundary = multer::parse_boundary(ct).ok()?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut fields = serde_json::Map::new();
    let mut file = None;
    while let Ok(Some(field)) = mp.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(file_name) => {
                let mime = field
                    .content_type()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                let bytes = field.bytes().await.ok()?.to_vec();
                file = Some(Upload {
                    field: name,
                    file_name,
                    mime,
                    bytes,
                });
            }
            None => {
                let text = field.text().await.ok()?;
                // Numbers and JSON objects arrive as text; keep what parses as such.
                let v = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| v.is_number() || v.is_object())
                    .unwrap_or(Value::String(text));
                fields.insert(name, v);
            }
        }
    }
    Some((Value::Object(fields), file))
}

/// A file a bot uploaded.
#[derive(Clone, Debug)]
pub struct Upload {
    pub field: String,
    pub file_name: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// A `sendPhoto` / `sendDocument` the bot made.
#[derive(Clone, Debug)]
pub struct SentFile {
    pub chat_id: i64,
    pub method: String,
    pub caption: Option<String>,
    pub upload: Upload,
}

async fn method(
    State((inner, notify)): State<St>,
    Path((bot, name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if !bot.starts_with("bot") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let name = name.to_lowercase();
    {
        let mut g = inner.lock().unwrap();
        g.calls += 1;
        *g.by_method.entry(name.clone()).or_default() += 1;
        if name == "getupdates" && g.first_poll.is_none() {
            g.first_poll = Some(Instant::now());
        }
    }
    let (params, upload) = match parse_multipart(&headers, body.clone()).await {
        Some((p, u)) => (p, u),
        None => (serde_json::from_slice(&body).unwrap_or(json!({})), None),
    };
    if let Some(u) = upload {
        return upload_file(&inner, &name, &params, u);
    }
    if name == "sendmessage" {
        inner.lock().unwrap().attempts.push(Instant::now());
    }
    let fault = {
        let mut g = inner.lock().unwrap();
        let queued = g.faults.get_mut(&name).and_then(VecDeque::pop_front);
        queued.or_else(|| g.chaos.as_mut().and_then(|c| c.pick(&name)))
    };
    match fault {
        Some(Fault::Drop) => drop_connection(),
        Some(Fault::DropAfter) => {
            let _ = act(&inner, &notify, &name, &params).await;
            if name == "sendmessage" {
                let reply_to = params["reply_parameters"]["message_id"]
                    .as_i64()
                    .unwrap_or(-1);
                inner.lock().unwrap().acted_then_dropped.push(reply_to);
            }
            drop_connection()
        }
        Some(f) => fault_response(f),
        None => act(&inner, &notify, &name, &params).await,
    }
}

/// Ends the connection without an answer: the panic unwinds hyper's connection task, which
/// closes the socket (resume_unwind skips the panic hook, so nothing is printed).
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("fake telegram: connection dropped"))
}

impl Chaos {
    fn pick(&mut self, method: &str) -> Option<Fault> {
        use rand::Rng;
        if !self.methods.iter().any(|m| m == method) || self.rng.random::<f64>() >= self.rate {
            return None;
        }
        let (kind, fault) = match self.rng.random_range(0..6) {
            0 => (
                "429",
                Fault::Error {
                    code: 429,
                    description: "Too Many Requests: retry after 1".into(),
                    retry_after: Some(1),
                },
            ),
            1 => (
                "502",
                Fault::Error {
                    code: 502,
                    description: "Bad Gateway".into(),
                    retry_after: None,
                },
            ),
            2 => ("malformed", Fault::Malformed),
            3 => ("drop before", Fault::Drop),
            4 if method == "sendmessage" => ("drop after", Fault::DropAfter),
            _ => (
                "500",
                Fault::Error {
                    code: 500,
                    description: "Internal Server Error".into(),
                    retry_after: None,
                },
            ),
        };
        *self.injected.entry(kind).or_default() += 1;
        Some(fault)
    }
}

/// Carries out a Bot API method.
async fn act(inner: &Mutex<Inner>, notify: &Notify, name: &str, params: &Value) -> Response {
    match name {
        "getme" => {
            let mut me = bot_user();
            for (k, v) in [
                ("can_join_groups", true),
                ("can_read_all_group_messages", false),
                ("supports_inline_queries", false),
                ("can_connect_to_business", false),
                ("has_main_web_app", false),
            ] {
                me[k] = json!(v);
            }
            ok(me)
        }
        "deletewebhook" => {
            inner.lock().unwrap().webhook_set = false;
            ok(json!(true))
        }
        "setwebhook" => {
            let url = params["url"].as_str().unwrap_or_default().to_string();
            let secret = params["secret_token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut g = inner.lock().unwrap();
            g.webhooks.push((url, secret));
            g.webhook_set = true;
            ok(json!(true))
        }
        "setmycommands" => {
            let names = params["commands"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["command"].as_str().map(str::to_string))
                .collect();
            inner.lock().unwrap().commands = names;
            ok(json!(true))
        }
        "sendchataction" => {
            let chat = params["chat_id"].as_i64().unwrap_or_default();
            let action = params["action"].as_str().unwrap_or_default().to_string();
            inner.lock().unwrap().actions.push((chat, action));
            ok(json!(true))
        }
        "sendmessage" => {
            let chat = params["chat_id"].as_i64().unwrap_or_default();
            let text = params["text"].as_str().unwrap_or_default().to_string();
            if let Some(refused) = refusal(&text, params) {
                return refused;
            }
            let mut g = inner.lock().unwrap();
            g.next_message += 1;
            let id = g.next_message;
            g.sent.push(Sent {
                chat_id: chat,
                text: text.clone(),
                parse_mode: params["parse_mode"].as_str().map(str::to_string),
                thread: params["message_thread_id"].as_i64(),
                reply_to: params["reply_parameters"]["message_id"].as_i64(),
                at: Instant::now(),
                id,
                markup: params.get("reply_markup").filter(|m| !m.is_null()).cloned(),
            });
            let chat_json = if chat > 0 {
                json!({ "id": chat, "type": "private", "first_name": "U" })
            } else {
                json!({ "id": chat, "type": "supergroup", "title": "Team" })
            };
            ok(
                json!({ "message_id": id, "date": 1_700_000_000, "chat": chat_json,
                       "from": bot_user(), "text": text }),
            )
        }
        "sendmessagedraft" => {
            let chat = params["chat_id"].as_i64().unwrap_or_default();
            let draft = params["draft_id"].as_i64().unwrap_or_default();
            let text = params["text"].as_str().unwrap_or_default().to_string();
            if let Some(refused) = refusal(&text, params) {
                return refused;
            }
            if chat <= 0 || draft == 0 {
                return fault_response(Fault::Error {
                    code: 400,
                    description: "Bad Request: drafts can be sent only to private chats".into(),
                    retry_after: None,
                });
            }
            let mut g = inner.lock().unwrap();
            g.drafts.push((chat, draft, text));
            g.drafts_at.push(Instant::now());
            ok(json!(true))
        }
        "deletemessage" => {
            let chat = params["chat_id"].as_i64().unwrap_or_default();
            let mid = params["message_id"].as_i64().unwrap_or_default();
            let mut g = inner.lock().unwrap();
            let before = g.sent.len();
            g.sent.retain(|s| !(s.id == mid && s.chat_id == chat));
            if g.sent.len() == before {
                return fault_response(Fault::Error {
                    code: 400,
                    description: "Bad Request: message to delete not found".into(),
                    retry_after: None,
                });
            }
            g.deleted.push((chat, mid));
            ok(json!(true))
        }
        "editmessagetext" => {
            let chat = params["chat_id"].as_i64().unwrap_or_default();
            let mid = params["message_id"].as_i64().unwrap_or_default();
            let text = params["text"].as_str().unwrap_or_default().to_string();
            let markup = params.get("reply_markup").filter(|m| !m.is_null()).cloned();
            if let Some(refused) = refusal(&text, params) {
                return refused;
            }
            let mut g = inner.lock().unwrap();
            let Some(sent) = g.sent.iter_mut().find(|s| s.id == mid && s.chat_id == chat) else {
                return fault_response(Fault::Error {
                    code: 400,
                    description: "Bad Request: message to edit not found".into(),
                    retry_after: None,
                });
            };
            if sent.text == text && sent.markup == markup {
                return fault_response(Fault::Error {
                    code: 400,
                    description: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message".into(),
                    retry_after: None,
                });
            }
            sent.text = text.clone();
            sent.markup = markup.clone();
            g.edits.push(Edit {
                chat_id: chat,
                message_id: mid,
                text: text.clone(),
                markup,
            });
            let chat_json = if chat > 0 {
                json!({ "id": chat, "type": "private", "first_name": "U" })
            } else {
                json!({ "id": chat, "type": "supergroup", "title": "Team" })
            };
            ok(
                json!({ "message_id": mid, "date": 1_700_000_000, "chat": chat_json,
                       "from": bot_user(), "text": text, "edit_date": 1_700_000_001 }),
            )
        }
        "answercallbackquery" => {
            let id = params["callback_query_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let text = params["text"].as_str().map(str::to_string);
            inner.lock().unwrap().answers.push((id, text));
            ok(json!(true))
        }
        "getfile" => {
            let id = params["file_id"].as_str().unwrap_or_default();
            match inner.lock().unwrap().files.get(id) {
                Some((path, bytes)) => ok(json!({
                    "file_id": id, "file_unique_id": format!("u-{id}"),
                    "file_size": bytes.len(), "file_path": path
                })),
                None => fault_response(Fault::Error {
                    code: 400,
                    description: "Bad Request: invalid file_id".into(),
                    retry_after: None,
                }),
            }
        }
        "getupdates" if inner.lock().unwrap().webhook_set => fault_response(Fault::Error {
            code: 409,
            description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".into(),
            retry_after: None,
        }),
        "getupdates" => {
            let offset = params["offset"].as_i64().unwrap_or(0);
            let timeout = params["timeout"].as_u64().unwrap_or(0).min(30);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let notified = notify.notified();
                {
                    let mut g = inner.lock().unwrap();
                    if offset > 0 {
                        // Confirmation: updates below the offset are forgotten.
                        g.confirmed = g.confirmed.max(offset);
                        g.updates
                            .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    }
                    let ready: Vec<Value> = g
                        .updates
                        .iter()
                        .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                        .cloned()
                        .collect();
                    if !ready.is_empty() {
                        return ok(Value::Array(ready));
                    }
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return ok(json!([]));
                }
            }
        }
        other => fault_response(Fault::Error {
            code: 404,
            description: format!("Not Found: method {other} is not in the fake"),
            retry_after: None,
        }),
    }
}

/// As Telegram does: the HTML must parse, and the visible text must be there and fit.
fn refusal(text: &str, params: &Value) -> Option<Response> {
    let visible = if params["parse_mode"] == "HTML" {
        match telegram_html(text) {
            Ok(v) => v,
            Err(why) => {
                return Some(fault_response(Fault::Error {
                    code: 400,
                    description: format!("Bad Request: can't parse entities: {why}"),
                    retry_after: None,
                }));
            }
        }
    } else {
        text.to_string()
    };
    if visible.trim().is_empty() || visible.encode_utf16().count() > 4096 {
        let description = if visible.trim().is_empty() {
            "Bad Request: message text is empty"
        } else {
            "Bad Request: message is too long"
        };
        return Some(fault_response(Fault::Error {
            code: 400,
            description: description.into(),
            retry_after: None,
        }));
    }
    None
}

/// `sendPhoto` and `sendDocument`, as Telegram answers them (a photo in several sizes).
fn upload_file(inner: &Mutex<Inner>, name: &str, params: &Value, u: Upload) -> Response {
    if !matches!(name, "sendphoto" | "senddocument" | "sendvoice") {
        return fault_response(Fault::Error {
            code: 400,
            description: format!("Bad Request: {name} takes no file"),
            retry_after: None,
        });
    }
    let limit = if name == "sendphoto" {
        10 << 20
    } else {
        50 << 20
    };
    if u.bytes.len() > limit {
        return fault_response(Fault::Error {
            code: 400,
            description: "Bad Request: file is too big".into(),
            retry_after: None,
        });
    }
    let chat = params["chat_id"]
        .as_i64()
        .or_else(|| params["chat_id"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_default();
    let caption = params["caption"].as_str().map(str::to_string);
    let mut g = inner.lock().unwrap();
    g.next_message += 1;
    let id = g.next_message;
    let size = u.bytes.len();
    let file_name = u.file_name.clone();
    let mime = u.mime.clone();
    g.files_sent.push(SentFile {
        chat_id: chat,
        method: name.to_string(),
        caption: caption.clone(),
        upload: u,
    });
    let chat_json = if chat > 0 {
        json!({ "id": chat, "type": "private", "first_name": "U" })
    } else {
        json!({ "id": chat, "type": "supergroup", "title": "Team" })
    };
    let mut m =
        json!({ "message_id": id, "date": 1_700_000_000, "chat": chat_json, "from": bot_user() });
    if let Some(c) = caption {
        m["caption"] = json!(c);
    }
    if name == "sendvoice" {
        m["voice"] = json!({ "file_id": format!("v{id}"), "file_unique_id": format!("u{id}"),
            "duration": params["duration"].as_str().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0),
            "mime_type": mime, "file_size": size });
    } else if name == "sendphoto" {
        m["photo"] = json!([
            { "file_id": format!("p{id}s"), "file_unique_id": format!("u{id}s"), "width": 90, "height": 90, "file_size": 1000 },
            { "file_id": format!("p{id}"), "file_unique_id": format!("u{id}"), "width": 800, "height": 800, "file_size": size },
        ]);
    } else {
        m["document"] = json!({ "file_id": format!("d{id}"), "file_unique_id": format!("u{id}"),
            "file_name": file_name, "mime_type": mime, "file_size": size });
    }
    ok(m)
}

async fn file(State((inner, _)): State<St>, Path((bot, path)): Path<(String, String)>) -> Response {
    if !bot.starts_with("bot") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut g = inner.lock().unwrap();
    g.downloads += 1;
    match g.files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
