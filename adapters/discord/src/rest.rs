//! Discord's REST API over reqwest: messages, typing, DM channels, history, attachments.
//! Every failure is classified for the outbox; `429` carries the wait Discord asked for.

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use switchboard_channel::{
    AudioAttachment, AudioFetcher, Button, ButtonKind, Buttons, ChannelError, Edits, Files,
    OutFile, Outbound, Sender, Target, Typing,
};

pub(crate) struct Rest {
    client: reqwest::Client,
    api: String,
    auth: String,
    /// DM channel of each user we talk to.
    dm_channels: Mutex<HashMap<u64, u64>>,
    /// The newest message id seen per channel, to fetch what a gateway gap missed.
    last_seen: Mutex<HashMap<u64, u64>>,
    /// Channels whose rate-limit bucket is empty until the given instant.
    blocked: Mutex<HashMap<u64, Instant>>,
    /// READY events seen: the second and later mean a fresh session after a gap.
    pub sessions: AtomicU32,
    /// Slash commands awaiting their answer: `i:<id>` → (application id, token, when). Discord
    /// accepts the answer for 15 minutes.
    interactions: Mutex<HashMap<String, (u64, String, Instant)>>,
}

const INTERACTION_TTL: Duration = Duration::from_secs(14 * 60);

impl Rest {
    pub fn new(api: &str, token: &str) -> Rest {
        Rest {
            client: reqwest::Client::builder()
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                // As many as the outbox sends at once (see the Telegram adapter's client).
                .pool_max_idle_per_host(16)
                .build()
                .unwrap_or_default(),
            api: api.to_string(),
            auth: format!("Bot {token}"),
            dm_channels: Mutex::default(),
            last_seen: Mutex::default(),
            blocked: Mutex::default(),
            sessions: AtomicU32::new(0),
            interactions: Mutex::default(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v10{path}", self.api)
    }

    pub fn saw(&self, channel: u64, message: u64) {
        if let Ok(mut m) = self.last_seen.lock() {
            let e = m.entry(channel).or_insert(0);
            *e = (*e).max(message);
        }
    }

    pub fn seen_channels(&self) -> Vec<(u64, u64)> {
        self.last_seen
            .lock()
            .map(|m| m.iter().map(|(c, id)| (*c, *id)).collect())
            .unwrap_or_default()
    }

    /// Messages posted in `channel` after `after`, oldest first.
    pub async fn history_after(
        &self,
        channel: u64,
        after: u64,
    ) -> Result<Vec<serenity::model::channel::Message>, ChannelError> {
        let resp = self
            .client
            .get(self.url(&format!(
                "/channels/{channel}/messages?after={after}&limit=100"
            )))
            .header("Authorization", &self.auth)
            .send()
            .await
            .map_err(network)?;
        let resp = check(resp).await?;
        let mut msgs: Vec<serenity::model::channel::Message> = resp
            .json()
            .await
            .map_err(|e| ChannelError::Transient(format!("unreadable history: {e}")))?;
        msgs.sort_by_key(|m| m.id);
        Ok(msgs)
    }

    async fn channel_for(&self, target: &Target) -> Result<u64, ChannelError> {
        let bad = || ChannelError::Rejected(format!("`{target}` is not a Discord target"));
        let (kind, id) = target.chat.split_once(':').ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        match kind {
            "channel" => Ok(id),
            "dm" => {
                if let Some(c) = self
                    .dm_channels
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&id).copied())
                {
                    return Ok(c);
                }
                let resp = self
                    .client
                    .post(self.url("/users/@me/channels"))
                    .header("Authorization", &self.auth)
                    .json(&serde_json::json!({ "recipient_id": id.to_string() }))
                    .send()
                    .await
                    .map_err(network)?;
                let v: serde_json::Value = check(resp)
                    .await?
                    .json()
                    .await
                    .map_err(|e| ChannelError::Transient(e.to_string()))?;
                let channel = v["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ChannelError::Transient("no DM channel id".into()))?;
                if let Ok(mut m) = self.dm_channels.lock() {
                    m.insert(id, channel);
                }
                Ok(channel)
            }
            _ => Err(bad()),
        }
    }

    /// Waits while the channel's bucket is known to be empty (from the last response's headers).
    async fn respect_bucket(&self, channel: u64) {
        let until = self
            .blocked
            .lock()
            .ok()
            .and_then(|m| m.get(&channel).copied());
        if let Some(t) = until {
            tokio::time::sleep_until(t.into()).await;
        }
    }

    fn note_bucket(&self, channel: u64, h: &HeaderMap) {
        let remaining = header_f64(h, "x-ratelimit-remaining");
        let reset = header_f64(h, "x-ratelimit-reset-after");
        if let (Some(r), Some(after), Ok(mut m)) = (remaining, reset, self.blocked.lock()) {
            if r <= 0.0 {
                m.insert(
                    channel,
                    Instant::now() + Duration::from_secs_f64(after.min(60.0)),
                );
            } else {
                m.remove(&channel);
            }
        }
    }
}

fn header_f64(h: &HeaderMap, name: &str) -> Option<f64> {
    h.get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

fn network(e: reqwest::Error) -> ChannelError {
    ChannelError::Transient(e.without_url().to_string())
}

/// A successful response, or its status classified.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ChannelError> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let message = body["message"].as_str().unwrap_or("").to_string();
    Err(match status {
        429 => {
            let secs = header_f64(&headers, "retry-after")
                .or_else(|| body["retry_after"].as_f64())
                .unwrap_or(1.0);
            ChannelError::RateLimited {
                retry_after: Duration::from_secs_f64(secs.clamp(0.0, 3600.0)),
            }
        }
        401 => ChannelError::Unauthorized(
            "the bot token was rejected; check channels.discord.token".into(),
        ),
        500..=599 => ChannelError::Transient(format!("discord answered {status}")),
        _ => ChannelError::Rejected(format!("discord answered {status}: {message}")),
    })
}

impl Rest {
    pub fn remember_interaction(&self, key: &str, app: u64, token: &str) {
        if let Ok(mut m) = self.interactions.lock() {
            m.retain(|_, (_, _, at)| at.elapsed() < INTERACTION_TTL);
            m.insert(key.to_string(), (app, token.to_string(), Instant::now()));
        }
    }

    /// Replaces a slash command's "thinking…" placeholder with `text` (once: the interaction is
    /// forgotten after). `None` when it is unknown or too old to edit.
    pub async fn edit_original(
        &self,
        key: &str,
        text: &str,
    ) -> Option<Result<String, ChannelError>> {
        let (app, token, at) = self.interactions.lock().ok()?.remove(key)?;
        if at.elapsed() >= INTERACTION_TTL {
            return None;
        }
        let sent = async {
            let resp = self
                .client
                .patch(self.url(&format!("/webhooks/{app}/{token}/messages/@original")))
                .json(&serde_json::json!({
                    "content": text,
                    "allowed_mentions": { "parse": [] },
                }))
                .send()
                .await
                .map_err(network)?;
            let v: serde_json::Value = check(resp)
                .await?
                .json()
                .await
                .map_err(|e| ChannelError::Transient(e.to_string()))?;
            Ok(v["id"].as_str().unwrap_or_default().to_string())
        }
        .await;
        Some(sent)
    }

    pub async fn interaction_callback(
        &self,
        id: u64,
        token: &str,
        body: serde_json::Value,
    ) -> Result<(), ChannelError> {
        let resp = self
            .client
            .post(self.url(&format!("/interactions/{id}/{token}/callback")))
            .json(&body)
            .send()
            .await
            .map_err(network)?;
        check(resp).await.map(|_| ())
    }

    /// Registers every chat command as a slash command: in each guild (available at once), or
    /// globally when no guilds are configured. Replaces what was registered before.
    pub async fn register_commands(&self, app: u64, guilds: &[String]) -> Result<(), ChannelError> {
        let commands: Vec<serde_json::Value> = switchboard_channel::COMMANDS
            .iter()
            .map(|c| {
                let mut v =
                    serde_json::json!({ "name": c.name, "description": c.description, "type": 1 });
                if let Some(arg) = c.arg {
                    v["options"] = serde_json::json!([{
                        "type": 3, "name": "text", "description": arg, "required": false
                    }]);
                }
                v
            })
            .collect();
        let paths: Vec<String> = if guilds.is_empty() {
            vec![format!("/applications/{app}/commands")]
        } else {
            guilds
                .iter()
                .map(|g| format!("/applications/{app}/guilds/{g}/commands"))
                .collect()
        };
        for path in paths {
            let resp = self
                .client
                .put(self.url(&path))
                .header("Authorization", &self.auth)
                .json(&commands)
                .send()
                .await
                .map_err(network)?;
            check(resp).await?;
        }
        tracing::info!(
            commands = commands.len(),
            "discord: slash commands registered"
        );
        Ok(())
    }

    /// Answers an interaction: with `notice`, an ephemeral message only the presser sees; else a
    /// deferred update (the message changes when the core settles it).
    pub async fn answer_interaction(
        &self,
        id: u64,
        token: &str,
        notice: Option<&str>,
    ) -> Result<(), ChannelError> {
        let body = match notice {
            Some(text) => {
                serde_json::json!({ "type": 4, "data": { "content": text, "flags": 64 } })
            }
            None => serde_json::json!({ "type": 6 }),
        };
        self.interaction_callback(id, token, body).await
    }

    /// A message's JSON: its text, never pinging @everyone or roles because a model wrote them,
    /// shown as a reply when it answers one.
    fn message_body(m: &Outbound) -> serde_json::Value {
        let mut body = serde_json::json!({
            "content": m.text,
            "allowed_mentions": { "parse": [], "replied_user": true },
        });
        if let Some(r) = &m.reply_to {
            body["message_reference"] =
                serde_json::json!({ "message_id": r, "fail_if_not_exists": false });
        }
        body
    }

    /// Sends a message-creating request to `channel`: its rate-limit bucket respected and noted,
    /// the new message's id returned.
    async fn create_message(
        &self,
        channel: u64,
        request: reqwest::RequestBuilder,
    ) -> Result<String, ChannelError> {
        let resp = request
            .header("Authorization", &self.auth)
            .send()
            .await
            .map_err(network)?;
        self.note_bucket(channel, resp.headers());
        let v: serde_json::Value = check(resp)
            .await?
            .json()
            .await
            .map_err(|e| ChannelError::Transient(e.to_string()))?;
        Ok(v["id"].as_str().unwrap_or_default().to_string())
    }

    /// Posts a message with one attachment: a multipart of `payload_json` and `files[0]`.
    async fn post_attachment(
        &self,
        m: &Outbound,
        payload: serde_json::Value,
        name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> Result<String, ChannelError> {
        let channel = self.channel_for(&m.target).await?;
        self.respect_bucket(channel).await;
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(name.to_string())
            .mime_str(mime)
            .map_err(|e| ChannelError::Rejected(format!("bad media type: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("payload_json", payload.to_string())
            .part("files[0]", part);
        let request = self
            .client
            .post(self.url(&format!("/channels/{channel}/messages")))
            .multipart(form);
        self.create_message(channel, request).await
    }

    async fn post(
        &self,
        m: &Outbound,
        components: Option<serde_json::Value>,
    ) -> Result<String, ChannelError> {
        let channel = self.channel_for(&m.target).await?;
        self.respect_bucket(channel).await;
        let mut body = Self::message_body(m);
        if let Some(c) = components {
            body["components"] = c;
        }
        let request = self
            .client
            .post(self.url(&format!("/channels/{channel}/messages")))
            .json(&body);
        self.create_message(channel, request).await
    }
}

#[async_trait]
impl Sender for Rest {
    async fn send(&self, m: &Outbound) -> Result<String, ChannelError> {
        // The answer to a slash command replaces its placeholder; an unknown or expired one
        // (after a restart) is posted as a plain message instead.
        if let Some(key) = m.reply_to.as_deref().filter(|r| r.starts_with("i:")) {
            if let Some(sent) = self.edit_original(key, &m.text).await {
                return sent;
            }
            let plain = Outbound {
                reply_to: None,
                ..m.clone()
            };
            return self.post(&plain, None).await;
        }
        self.post(m, None).await
    }

    fn max_len(&self) -> usize {
        2000
    }
}

/// Attachments: a multipart message (`payload_json` and `files[0]`). Bots may upload 10 MiB
/// where the server has no boost.
#[async_trait]
impl Files for Rest {
    async fn send_file(&self, m: &Outbound, file: &OutFile) -> Result<String, ChannelError> {
        let mut payload = Self::message_body(m);
        payload["attachments"] = serde_json::json!([{ "id": 0, "filename": file.name }]);
        self.post_attachment(m, payload, &file.name, &file.mime, &file.bytes)
            .await
    }

    fn max_file_bytes(&self) -> u64 {
        10 * 1024 * 1024
    }

    fn max_caption_len(&self) -> usize {
        2000
    }
}

/// Voice messages: an Ogg/Opus attachment with its duration and waveform, flag
/// IS_VOICE_MESSAGE (8192). Discord shows them as a player; they carry no text.
#[async_trait]
impl switchboard_channel::VoiceNotes for Rest {
    async fn send_voice(
        &self,
        m: &Outbound,
        note: &switchboard_channel::VoiceNote,
    ) -> Result<String, ChannelError> {
        use base64::Engine;
        let mut payload = serde_json::json!({
            "flags": 8192,
            "attachments": [{
                "id": 0,
                "filename": "voice-message.ogg",
                "duration_secs": note.duration_secs,
                "waveform": base64::engine::general_purpose::STANDARD.encode(&note.waveform),
            }],
            "allowed_mentions": { "parse": [] },
        });
        if let Some(r) = &m.reply_to {
            payload["message_reference"] =
                serde_json::json!({ "message_id": r, "fail_if_not_exists": false });
        }
        self.post_attachment(m, payload, "voice-message.ogg", "audio/ogg", &note.ogg)
            .await
    }
}

/// Message components: one action row of buttons; a press arrives as an interaction.
#[async_trait]
impl Buttons for Rest {
    async fn ask(&self, m: &Outbound, buttons: &[Button]) -> Result<String, ChannelError> {
        let row: Vec<serde_json::Value> = buttons
            .iter()
            .map(|b| {
                let style = match b.kind {
                    ButtonKind::Positive => 3,
                    ButtonKind::Negative => 4,
                    ButtonKind::Neutral => 2,
                };
                serde_json::json!({ "type": 2, "style": style, "label": b.label, "custom_id": b.data })
            })
            .collect();
        self.post(
            m,
            Some(serde_json::json!([{ "type": 1, "components": row }])),
        )
        .await
    }

    async fn settle(
        &self,
        target: &Target,
        message_id: &str,
        text: &str,
    ) -> Result<(), ChannelError> {
        let body = serde_json::json!({ "content": text, "components": [],
            "allowed_mentions": { "parse": [] } });
        self.change_message(target, message_id, reqwest::Method::PATCH, Some(body))
            .await
    }
}

impl Rest {
    /// PATCHes or DELETEs one of the bot's messages, within the channel's rate-limit bucket.
    async fn change_message(
        &self,
        target: &Target,
        message_id: &str,
        method: reqwest::Method,
        body: Option<serde_json::Value>,
    ) -> Result<(), ChannelError> {
        if message_id.is_empty() || !message_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChannelError::Rejected(format!(
                "`{message_id}` is not a Discord message id"
            )));
        }
        let channel = self.channel_for(target).await?;
        self.respect_bucket(channel).await;
        let mut request = self
            .client
            .request(
                method,
                self.url(&format!("/channels/{channel}/messages/{message_id}")),
            )
            .header("Authorization", &self.auth);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let resp = request.send().await.map_err(network)?;
        self.note_bucket(channel, resp.headers());
        check(resp).await.map(|_| ())
    }
}

/// Edits in place (PATCH, mentions never pinged) and deletion.
#[async_trait]
impl Edits for Rest {
    async fn edit(
        &self,
        target: &Target,
        message_id: &str,
        text: &str,
    ) -> Result<(), ChannelError> {
        let body = serde_json::json!({ "content": text, "allowed_mentions": { "parse": [] } });
        self.change_message(target, message_id, reqwest::Method::PATCH, Some(body))
            .await
    }

    async fn delete(&self, target: &Target, message_id: &str) -> Result<(), ChannelError> {
        match self
            .change_message(target, message_id, reqwest::Method::DELETE, None)
            .await
        {
            // Already gone (deleted by a person, say): nothing left to do.
            Err(ChannelError::Rejected(why)) if why.starts_with("discord answered 404") => Ok(()),
            other => other,
        }
    }
}

#[async_trait]
impl Typing for Rest {
    async fn typing(&self, target: &Target, _thread: Option<&str>) -> Result<(), ChannelError> {
        let channel = self.channel_for(target).await?;
        let resp = self
            .client
            .post(self.url(&format!("/channels/{channel}/typing")))
            .header("Authorization", &self.auth)
            .send()
            .await
            .map_err(network)?;
        check(resp).await.map(|_| ())
    }
}

#[async_trait]
impl switchboard_channel::FileFetcher for Rest {
    async fn fetch_file(
        &self,
        f: &switchboard_channel::FileAttachment,
    ) -> Result<Vec<u8>, ChannelError> {
        let resp = self.client.get(&f.file_ref).send().await.map_err(network)?;
        let resp = check(resp).await?;
        Ok(resp.bytes().await.map_err(network)?.to_vec())
    }
}

#[async_trait]
impl AudioFetcher for Rest {
    async fn fetch(&self, a: &AudioAttachment) -> Result<Vec<u8>, ChannelError> {
        let resp = self.client.get(&a.file_ref).send().await.map_err(network)?;
        let resp = check(resp).await?;
        Ok(resp.bytes().await.map_err(network)?.to_vec())
    }
}

/// Marks `n` as used so the counter is not reported as dead in builds without catch-up.
pub(crate) fn next_session(rest: &Rest) -> u32 {
    rest.sessions.fetch_add(1, Ordering::SeqCst) + 1
}
