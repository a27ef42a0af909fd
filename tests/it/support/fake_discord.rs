//! A fake Discord on 127.0.0.1: REST (axum) and the gateway (WebSocket, tokio-tungstenite 0.21 as
//! serenity uses), speaking the real opcodes: HELLO, IDENTIFY, READY, HEARTBEAT/ACK, RESUME/RESUMED,
//! INVALID_SESSION, and MESSAGE_CREATE dispatches. Tests post user messages (checked against
//! serenity's `Message` type), read what the bot posted, drop the connection, invalidate the
//! session, close with a code (4004, 4014), and make `POST /channels/{id}/messages` answer 429 with
//! Discord's rate-limit headers and body.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub const BOT_ID: u64 = 99;

#[derive(Clone, Debug)]
pub struct DSent {
    pub channel: u64,
    pub content: String,
    pub reply_to: Option<String>,
    pub at: Instant,
    pub id: u64,
    /// Message components as sent or last edited (`[]` or null: none).
    pub components: Value,
    /// The file uploaded with it.
    pub attachment: Option<super::fake_telegram::Upload>,
    /// Message flags (8192: a voice message).
    pub flags: u64,
    /// The `attachments` metadata of its payload (a voice message's `duration_secs`, `waveform`).
    pub attachments: Value,
}

/// An answer to an interaction: its id, the callback type (4 message, 6 deferred update) and
/// the content shown (ephemeral when flag 64).
#[derive(Clone, Debug)]
pub struct InteractionAnswer {
    pub interaction: u64,
    pub kind: u64,
    pub content: Option<String>,
    pub ephemeral: bool,
}

enum Cmd {
    Send(Value),
    Close(u16),
    Drop,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    seq: u64,
    session: Option<String>,
    session_valid: bool,
    close_on_identify: Option<u16>,
    conn: Option<mpsc::UnboundedSender<Cmd>>,
    /// Dispatches not delivered while disconnected (replayed on RESUME, lost on IDENTIFY).
    pending: Vec<Value>,
    history: HashMap<u64, Vec<Value>>,
    sent: Vec<DSent>,
    attempts: Vec<Instant>,
    faults: VecDeque<(u16, f64)>,
    /// The same, for message edits (PATCH).
    edit_faults: VecDeque<(u16, f64)>,
    /// Messages the bot deleted: (channel, message id).
    deleted: Vec<(u64, u64)>,
    identifies: u32,
    /// The `shard` of each IDENTIFY (`[id, total]`), in order.
    shards: Vec<Value>,
    /// Connections that identified as one shard of several: shard id → (total, connection).
    /// Guild events go to the guild's shard, `(guild_id >> 22) % total`, DMs to shard 0, as
    /// Discord routes them.
    by_shard: HashMap<u64, (u64, mpsc::UnboundedSender<Cmd>)>,
    resumes: u32,
    typing: Vec<u64>,
    /// Attachment bodies served at `/cdn/attachments/{id}/voice-message.ogg`.
    cdn: HashMap<u64, Bytes>,
    cdn_fetches: u32,
    /// REST requests received, of any route.
    rest_calls: u64,
    /// When the first IDENTIFY arrived.
    first_identify: Option<Instant>,
    /// HELLO's heartbeat interval; 0 means the tests' 1 s.
    heartbeat_ms: u64,
    interaction_answers: Vec<InteractionAnswer>,
    /// Slash command registrations: (guild or None for global, command names).
    registrations: Vec<(Option<u64>, Vec<String>)>,
    /// Answers to slash commands (edits of the original response): (token, content).
    originals: Vec<(String, String)>,
    /// Message edits: (channel, message, content).
    edits: Vec<(u64, u64, String)>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    /// REST root to configure as `channels.discord.apiUrl`.
    pub api_url: String,
    inner: Arc<Mutex<Inner>>,
}

fn message_json(
    id: u64,
    channel: u64,
    guild: Option<u64>,
    author: u64,
    content: &str,
    mentions_bot: bool,
) -> Value {
    let user = |id: u64, bot: bool| {
        json!({ "id": id.to_string(), "username": format!("user{id}"), "discriminator": "0",
                "avatar": null, "global_name": format!("User {id}"), "bot": bot })
    };
    let mut m = json!({
        "id": id.to_string(), "channel_id": channel.to_string(), "author": user(author, author == BOT_ID),
        "content": content, "timestamp": "2026-11-23T12:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false,
        "mentions": if mentions_bot { json!([user(BOT_ID, true)]) } else { json!([]) },
        "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0
    });
    if let Some(g) = guild {
        m["guild_id"] = json!(g.to_string());
    }
    m
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let inner = Arc::new(Mutex::new(Inner {
            next_id: 1_000_000,
            ..Inner::default()
        }));
        // Gateway.
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_url = format!("ws://{}", ws.local_addr().unwrap());
        let st = inner.clone();
        let resume_url = ws_url.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = ws.accept().await {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(session(tcp, st.clone(), resume_url.clone()));
            }
        });
        // REST.
        let app = Router::new()
            .route("/api/v10/gateway", get(gateway_url))
            .route("/api/v10/gateway/bot", get(gateway_url))
            .route(
                "/api/v10/users/@me",
                get(|| async { axum::Json(bot_user()) }),
            )
            .route("/api/v10/users/@me/channels", post(dm_channel))
            .route(
                "/api/v10/channels/{id}/messages",
                post(create_message).get(history),
            )
            .route("/api/v10/channels/{id}/typing", post(typing))
            .route(
                "/api/v10/channels/{id}/messages/{mid}",
                axum::routing::patch(edit_message).delete(delete_message),
            )
            .route(
                "/api/v10/interactions/{id}/{token}/callback",
                post(interaction_callback),
            )
            .route(
                "/api/v10/applications/{app}/commands",
                axum::routing::put(register_commands),
            )
            .route(
                "/api/v10/applications/{app}/guilds/{guild}/commands",
                axum::routing::put(register_guild_commands),
            )
            .route(
                "/api/v10/webhooks/{app}/{token}/messages/@original",
                axum::routing::patch(edit_original),
            )
            .route("/cdn/attachments/{id}/{file}", get(attachment))
            .layer(axum::middleware::from_fn_with_state(
                inner.clone(),
                count_rest,
            ))
            .with_state((inner.clone(), ws_url));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}/api", listener.local_addr().unwrap());
        let listener = axum::serve::ListenerExt::tap_io(listener, |t| {
            let _ = t.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeDiscord { api_url, inner }
    }

    /// A user message in `channel` (a guild channel when `guild` is set, else a DM); returns its id.
    pub fn message(
        &self,
        channel: u64,
        guild: Option<u64>,
        author: u64,
        content: &str,
        mentions_bot: bool,
    ) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.next_id += 1;
        let id = g.next_id;
        let m = message_json(id, channel, guild, author, content, mentions_bot);
        dispatch(&mut g, channel, m);
        id
    }

    /// A voice message (flag IS_VOICE_MESSAGE, one `audio/ogg` attachment on the fake CDN, as the
    /// Discord client sends them); returns its id.
    pub fn voice_message(
        &self,
        channel: u64,
        guild: Option<u64>,
        author: u64,
        ogg: Vec<u8>,
        duration_secs: f64,
    ) -> u64 {
        let cdn = self.api_url.trim_end_matches("/api").to_string();
        let mut g = self.inner.lock().unwrap();
        g.next_id += 1;
        let id = g.next_id;
        let mut m = message_json(id, channel, guild, author, "", guild.is_some());
        let url = format!("{cdn}/cdn/attachments/{id}/voice-message.ogg");
        m["flags"] = json!(1 << 13);
        m["attachments"] = json!([{
            "id": (id + 1).to_string(), "filename": "voice-message.ogg", "size": ogg.len(),
            "url": url, "proxy_url": url, "content_type": "audio/ogg",
            "duration_secs": duration_secs, "waveform": "AAAA"
        }]);
        g.cdn.insert(id, Bytes::from(ogg));
        dispatch(&mut g, channel, m);
        id
    }

    /// How many attachment downloads the CDN served.
    /// `user` presses the button with `custom_id` under bot message `message` in `channel` (a
    /// guild channel when `guild` is set, else a DM): an INTERACTION_CREATE of a message
    /// component, checked against serenity's type. Returns the interaction id.
    pub fn press(
        &self,
        channel: u64,
        guild: Option<u64>,
        user: u64,
        message: u64,
        custom_id: &str,
    ) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.next_id += 1;
        let id = g.next_id;
        let i = json!({
            "id": id.to_string(), "application_id": BOT_ID.to_string(), "type": 3,
            "data": { "custom_id": custom_id, "component_type": 2 },
            "channel_id": channel.to_string(),
            "token": format!("itoken-{id}"), "version": 1,
            "message": message_json(message, channel, guild, BOT_ID, "question", false),
            "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {},
            "app_permissions": "0", "attachment_size_limit": 8388608,
        });
        interaction(&mut g, i, guild, user);
        id
    }

    /// `user` runs slash command `/name [text]` in `channel` (a guild channel when `guild` is
    /// set, else a DM): an INTERACTION_CREATE of type 2, checked against serenity's type.
    /// Returns the interaction's token.
    pub fn slash(
        &self,
        channel: u64,
        guild: Option<u64>,
        user: u64,
        name: &str,
        text: Option<&str>,
    ) -> String {
        let mut g = self.inner.lock().unwrap();
        g.next_id += 1;
        let id = g.next_id;
        let token = format!("stoken-{id}");
        let mut data = json!({ "id": "777", "name": name, "type": 1 });
        if let Some(t) = text {
            data["options"] = json!([{ "name": "text", "type": 3, "value": t }]);
        }
        let i = json!({
            "id": id.to_string(), "application_id": "1", "type": 2, "data": data,
            "channel_id": channel.to_string(), "token": token, "version": 1,
            "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {},
            "app_permissions": "0", "attachment_size_limit": 8388608,
        });
        interaction(&mut g, i, guild, user);
        token
    }

    /// Slash command registrations: (guild, or `None` for global; command names).
    pub fn registrations(&self) -> Vec<(Option<u64>, Vec<String>)> {
        self.inner.lock().unwrap().registrations.clone()
    }

    /// Answers given to slash commands: (interaction token, content).
    pub fn originals(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().originals.clone()
    }

    pub fn interaction_answers(&self) -> Vec<InteractionAnswer> {
        self.inner.lock().unwrap().interaction_answers.clone()
    }

    /// Message edits: (channel, message, content).
    pub fn edits(&self) -> Vec<(u64, u64, String)> {
        self.inner.lock().unwrap().edits.clone()
    }

    pub fn cdn_fetches(&self) -> u32 {
        self.inner.lock().unwrap().cdn_fetches
    }

    pub fn sent(&self) -> Vec<DSent> {
        self.inner.lock().unwrap().sent.clone()
    }

    pub fn attempts(&self) -> Vec<Instant> {
        self.inner.lock().unwrap().attempts.clone()
    }

    /// The heartbeat interval HELLO announces from now on (tests use 1 s so a dead connection is
    /// noticed quickly; Discord itself says 41.25 s, which idle benchmarks use).
    pub fn set_heartbeat_interval(&self, ms: u64) {
        self.inner.lock().unwrap().heartbeat_ms = ms;
    }

    /// REST requests received so far, of any route.
    pub fn rest_calls(&self) -> u64 {
        self.inner.lock().unwrap().rest_calls
    }

    /// When the first IDENTIFY arrived, if one has.
    pub fn first_identify(&self) -> Option<Instant> {
        self.inner.lock().unwrap().first_identify
    }

    pub fn typing(&self) -> Vec<u64> {
        self.inner.lock().unwrap().typing.clone()
    }

    /// The shard each IDENTIFY asked for (`[id, total]`; `Null` when it named none).
    pub fn identified_shards(&self) -> Vec<Value> {
        self.inner.lock().unwrap().shards.clone()
    }

    pub fn identifies(&self) -> u32 {
        self.inner.lock().unwrap().identifies
    }

    pub fn resumes(&self) -> u32 {
        self.inner.lock().unwrap().resumes
    }

    pub fn connected(&self) -> bool {
        self.inner.lock().unwrap().conn.is_some()
    }

    /// The next `POST /channels/{id}/messages` answers 429 asking to wait `secs`.
    pub fn rate_limit_next(&self, secs: f64) {
        self.inner.lock().unwrap().faults.push_back((429, secs));
    }

    /// The next `POST /channels/{id}/messages` answers with `status` (a 5xx: Discord failing).
    /// The next message edit (PATCH) is answered 429 with `retry_after` = `secs`.
    pub fn rate_limit_next_edit(&self, secs: f64) {
        self.inner
            .lock()
            .unwrap()
            .edit_faults
            .push_back((429, secs));
    }

    /// Messages the bot deleted: (channel, message id).
    pub fn deleted(&self) -> Vec<(u64, u64)> {
        self.inner.lock().unwrap().deleted.clone()
    }

    pub fn fail_next(&self, status: u16) {
        self.inner.lock().unwrap().faults.push_back((status, 0.0));
    }

    /// Closes the gateway connection with `code` (e.g. 4000 unknown error, 1001 going away).
    pub fn close_connection(&self, code: u16) {
        if let Some(tx) = self.inner.lock().unwrap().conn.take() {
            let _ = tx.send(Cmd::Close(code));
        }
    }

    /// The next IDENTIFY is answered by closing with `code` (4004 bad token, 4014 intents).
    pub fn close_on_identify(&self, code: u16) {
        self.inner.lock().unwrap().close_on_identify = Some(code);
    }

    /// Cuts the connection without a close frame (as a network failure would).
    pub fn drop_connection(&self) {
        if let Some(tx) = self.inner.lock().unwrap().conn.take() {
            let _ = tx.send(Cmd::Drop);
        }
    }

    /// Makes the session unresumable: the next RESUME gets INVALID_SESSION.
    pub fn invalidate_session(&self) {
        self.inner.lock().unwrap().session_valid = false;
    }

    pub async fn wait_sent(&self, pred: impl Fn(&[DSent]) -> bool) -> Vec<DSent> {
        self.wait_sent_up_to(400, pred).await
    }

    /// As `wait_sent`, polling `tries` times 25 ms apart (voice tests: whisper on a busy CI box).
    pub async fn wait_sent_up_to(&self, tries: u32, pred: impl Fn(&[DSent]) -> bool) -> Vec<DSent> {
        for _ in 0..tries {
            let s = self.sent();
            if pred(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "discord never received the expected messages; sent: {:#?}",
            self.sent()
        );
    }

    pub async fn wait_until(&self, what: &str, pred: impl Fn(&FakeDiscord) -> bool) {
        for _ in 0..400 {
            if pred(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("discord fake: timed out waiting for {what}");
    }
}

/// Completes interaction `i` from `user` (a guild member when `guild` is set, else a DM user),
/// checks it against serenity's `Interaction` and sends it as an INTERACTION_CREATE.
fn interaction(g: &mut Inner, mut i: Value, guild: Option<u64>, user: u64) {
    let user_json = json!({ "id": user.to_string(), "username": format!("user{user}"),
        "discriminator": "0", "avatar": null, "global_name": format!("User {user}") });
    match guild {
        Some(gid) => {
            i["guild_id"] = json!(gid.to_string());
            i["member"] = json!({ "user": user_json, "roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00",
                "deaf": false, "mute": false, "flags": 0, "permissions": "0" });
        }
        None => i["user"] = user_json,
    }
    if let Err(e) = serde_json::from_value::<
        switchboard_discord::serenity::model::application::Interaction,
    >(i.clone())
    {
        panic!("fixture does not match serenity's Interaction: {e}\n{i}");
    }
    g.seq += 1;
    let event = json!({ "op": 0, "t": "INTERACTION_CREATE", "s": g.seq, "d": i });
    send_event(g, event);
}

/// Sends a dispatch now, or keeps it for the next connection while the bot is disconnected.
fn send_event(g: &mut Inner, event: Value) {
    if let Some(total) = g.by_shard.values().next().map(|(t, _)| *t) {
        let guild = event["d"]["guild_id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok());
        let shard = guild.map_or(0, |id| (id >> 22) % total);
        match g.by_shard.get(&shard) {
            Some((_, tx)) if tx.send(Cmd::Send(event.clone())).is_ok() => {}
            _ => g.pending.push(event),
        }
        return;
    }
    match &g.conn {
        Some(tx) if tx.send(Cmd::Send(event.clone())).is_ok() => {}
        _ => g.pending.push(event),
    }
}

/// Checks `m` against serenity's `Message`, keeps it in the channel's history and sends it as a
/// MESSAGE_CREATE (or queues it while the bot is disconnected).
fn dispatch(g: &mut Inner, channel: u64, m: Value) {
    if let Err(e) =
        serde_json::from_value::<switchboard_discord::serenity::model::channel::Message>(m.clone())
    {
        panic!("fixture does not match serenity's Message: {e}\n{m}");
    }
    g.history.entry(channel).or_default().push(m.clone());
    g.seq += 1;
    let event = json!({ "op": 0, "t": "MESSAGE_CREATE", "s": g.seq, "d": m });
    send_event(g, event);
}

async fn attachment(
    State((inner, _)): State<St>,
    Path((id, _file)): Path<(u64, String)>,
) -> Response {
    let mut g = inner.lock().unwrap();
    g.cdn_fetches += 1;
    match g.cdn.get(&id) {
        Some(b) => ([("content-type", "audio/ogg")], b.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn bot_user() -> Value {
    json!({ "id": BOT_ID.to_string(), "username": "jarvis", "discriminator": "0", "avatar": null,
            "global_name": "Jarvis", "bot": true })
}

type St = (Arc<Mutex<Inner>>, String);

async fn gateway_url(State((_, ws)): State<St>) -> Response {
    axum::Json(json!({ "url": ws, "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 } }))
    .into_response()
}

async fn count_rest(
    State(inner): State<Arc<Mutex<Inner>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    inner.lock().unwrap().rest_calls += 1;
    next.run(req).await
}

async fn dm_channel(State((inner, _)): State<St>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let user: u64 = v["recipient_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let _ = inner;
    axum::Json(json!({ "id": (500_000 + user).to_string(), "type": 1, "last_message_id": null,
        "recipients": [{ "id": user.to_string(), "username": "u", "discriminator": "0", "avatar": null }] }))
    .into_response()
}

async fn typing(State((inner, _)): State<St>, Path(id): Path<u64>) -> Response {
    inner.lock().unwrap().typing.push(id);
    StatusCode::NO_CONTENT.into_response()
}

async fn history(
    State((inner, _)): State<St>,
    Path(id): Path<u64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let g = inner.lock().unwrap();
    let mut msgs: Vec<Value> = g
        .history
        .get(&id)
        .into_iter()
        .flatten()
        .filter(|m| {
            m["id"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                > after
        })
        .cloned()
        .collect();
    msgs.reverse(); // Discord returns newest first
    axum::Json(Value::Array(msgs)).into_response()
}

async fn create_message(
    State((inner, _)): State<St>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A message with an attachment is multipart: `payload_json` and `files[N]`.
    let (v, upload) = match super::fake_telegram::parse_multipart(&headers, body.clone()).await {
        Some((fields, upload)) => {
            let payload = match &fields["payload_json"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
                other => other.clone(),
            };
            (payload, upload)
        }
        None => (serde_json::from_slice(&body).unwrap_or_default(), None),
    };
    if let Some(u) = &upload
        && u.bytes.len() > 10 << 20
    {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(json!({ "message": "Request entity too large", "code": 40005 })),
        )
            .into_response();
    }
    let mut g = inner.lock().unwrap();
    g.attempts.push(Instant::now());
    if let Some((code, secs)) = g.faults.pop_front() {
        return fault(code, secs);
    }
    if content_too_long(&v) {
        return too_long();
    }
    g.next_id += 1;
    let mid = g.next_id;
    let content = v["content"].as_str().unwrap_or_default().to_string();
    g.sent.push(DSent {
        channel: id,
        content: content.clone(),
        reply_to: v["message_reference"]["message_id"]
            .as_str()
            .map(str::to_string),
        at: Instant::now(),
        id: mid,
        components: v["components"].clone(),
        attachment: upload,
        flags: v["flags"].as_u64().unwrap_or(0),
        attachments: v["attachments"].clone(),
    });
    let m = message_json(mid, id, None, BOT_ID, &content, false);
    g.history.entry(id).or_default().push(m.clone());
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-remaining", "4".parse().unwrap());
    h.insert("x-ratelimit-reset-after", "1.000".parse().unwrap());
    (StatusCode::OK, h, axum::Json(m)).into_response()
}

/// Discord refuses content over 2,000 characters.
fn content_too_long(v: &Value) -> bool {
    v["content"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 2000)
}

fn too_long() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "message": "Invalid Form Body", "code": 50035,
            "errors": { "content": { "_errors": [{ "code": "BASE_TYPE_MAX_LENGTH",
                "message": "Must be 2000 or fewer in length." }] } } })),
    )
        .into_response()
}

/// An injected failure: a 429 as Discord sends it (headers and body), or another status.
fn fault(code: u16, secs: f64) -> Response {
    {
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            format!("{}", secs.ceil() as u64).parse().unwrap(),
        );
        h.insert("x-ratelimit-limit", "5".parse().unwrap());
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert(
            "x-ratelimit-reset-after",
            format!("{secs:.3}").parse().unwrap(),
        );
        h.insert("x-ratelimit-scope", "user".parse().unwrap());
        let body = json!({ "message": "You are being rate limited.", "retry_after": secs, "global": false, "code": 0 });
        (StatusCode::from_u16(code).unwrap(), h, axum::Json(body)).into_response()
    }
}

async fn delete_message(
    State((inner, _)): State<St>,
    Path((id, mid)): Path<(u64, u64)>,
) -> Response {
    let mut g = inner.lock().unwrap();
    let before = g.sent.len();
    g.sent.retain(|s| !(s.id == mid && s.channel == id));
    if g.sent.len() == before {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "message": "Unknown Message", "code": 10008 })),
        )
            .into_response();
    }
    g.deleted.push((id, mid));
    StatusCode::NO_CONTENT.into_response()
}

async fn edit_message(
    State((inner, _)): State<St>,
    Path((id, mid)): Path<(u64, u64)>,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut g = inner.lock().unwrap();
    if let Some((code, secs)) = g.edit_faults.pop_front() {
        return fault(code, secs);
    }
    if content_too_long(&v) {
        return too_long();
    }
    let content = v["content"].as_str().unwrap_or_default().to_string();
    let Some(sent) = g.sent.iter_mut().find(|s| s.id == mid && s.channel == id) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "message": "Unknown Message", "code": 10008 })),
        )
            .into_response();
    };
    sent.content = content.clone();
    if v.get("components").is_some() {
        sent.components = v["components"].clone();
    }
    g.edits.push((id, mid, content.clone()));
    axum::Json(message_json(mid, id, None, BOT_ID, &content, false)).into_response()
}

fn command_names(body: &Bytes) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

async fn register_commands(State((inner, _)): State<St>, body: Bytes) -> Response {
    let names = command_names(&body);
    inner.lock().unwrap().registrations.push((None, names));
    axum::Json(json!([])).into_response()
}

async fn register_guild_commands(
    State((inner, _)): State<St>,
    Path((_app, guild)): Path<(u64, u64)>,
    body: Bytes,
) -> Response {
    let names = command_names(&body);
    inner
        .lock()
        .unwrap()
        .registrations
        .push((Some(guild), names));
    axum::Json(json!([])).into_response()
}

async fn edit_original(
    State((inner, _)): State<St>,
    Path((_app, token)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let content = v["content"].as_str().unwrap_or_default().to_string();
    let mut g = inner.lock().unwrap();
    g.next_id += 1;
    let id = g.next_id;
    g.originals.push((token, content.clone()));
    axum::Json(message_json(id, 0, None, BOT_ID, &content, false)).into_response()
}

async fn interaction_callback(
    State((inner, _)): State<St>,
    Path((id, _token)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    inner
        .lock()
        .unwrap()
        .interaction_answers
        .push(InteractionAnswer {
            interaction: id,
            kind: v["type"].as_u64().unwrap_or(0),
            content: v["data"]["content"].as_str().map(str::to_string),
            ephemeral: v["data"]["flags"].as_u64().unwrap_or(0) & 64 != 0,
        });
    StatusCode::NO_CONTENT.into_response()
}

async fn session(tcp: tokio::net::TcpStream, inner: Arc<Mutex<Inner>>, resume_url: String) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut out, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
    let interval = match inner.lock().unwrap().heartbeat_ms {
        0 => 1000,
        ms => ms,
    };
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": interval } });
    if out.send(Ws::Text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = incoming.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Ws::Text(text) = frame else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(1) => {
                        let _ = out.send(Ws::Text(json!({ "op": 11 }).to_string())).await;
                    }
                    Some(2) => {
                        let close = inner.lock().unwrap().close_on_identify.take();
                        if let Some(code) = close {
                            let _ = out.send(Ws::Close(Some(CloseFrame { code: CloseCode::from(code), reason: "closed by fake".into() }))).await;
                            break;
                        }
                        let ready = {
                            let mut g = inner.lock().unwrap();
                            g.identifies += 1;
                            g.shards.push(v["d"]["shard"].clone());
                            if let (Some(id), Some(total)) = (v["d"]["shard"][0].as_u64(), v["d"]["shard"][1].as_u64())
                                && total > 1
                            {
                                g.by_shard.insert(id, (total, tx.clone()));
                            }
                            g.first_identify.get_or_insert_with(Instant::now);
                            let sid = format!("session-{}", g.identifies);
                            g.session = Some(sid.clone());
                            g.session_valid = true;
                            g.pending.clear(); // a fresh session does not replay
                            g.seq += 1;
                            g.conn = Some(tx.clone());
                            json!({ "op": 0, "t": "READY", "s": g.seq, "d": {
                                "v": 10, "user": bot_user(), "guilds": [], "session_id": sid,
                                "resume_gateway_url": resume_url, "application": { "id": "1", "flags": 0 }
                            }})
                        };
                        let _ = out.send(Ws::Text(ready.to_string())).await;
                    }
                    Some(6) => {
                        let replay = {
                            let mut g = inner.lock().unwrap();
                            let ok = g.session_valid && g.session.as_deref() == v["d"]["session_id"].as_str();
                            if ok {
                                g.resumes += 1;
                                g.conn = Some(tx.clone());
                                let mut events: Vec<Value> = g.pending.drain(..).collect();
                                g.seq += 1;
                                events.push(json!({ "op": 0, "t": "RESUMED", "s": g.seq, "d": {} }));
                                Some(events)
                            } else {
                                None
                            }
                        };
                        match replay {
                            Some(events) => {
                                for e in events {
                                    let _ = out.send(Ws::Text(e.to_string())).await;
                                }
                            }
                            None => {
                                let _ = out.send(Ws::Text(json!({ "op": 9, "d": false }).to_string())).await;
                            }
                        }
                    }
                    _ => {}
                }
            }
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(v)) => {
                    if out.send(Ws::Text(v.to_string())).await.is_err() {
                        break;
                    }
                }
                Some(Cmd::Close(code)) => {
                    let _ = out.send(Ws::Close(Some(CloseFrame { code: CloseCode::from(code), reason: "".into() }))).await;
                    break;
                }
                Some(Cmd::Drop) | None => break,
            }
        }
    }
    let mut g = inner.lock().unwrap();
    if g.conn.as_ref().is_some_and(|c| c.same_channel(&tx)) {
        g.conn = None;
    }
}
