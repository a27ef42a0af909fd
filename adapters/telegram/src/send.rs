//! Posting to Telegram: messages (as HTML, falling back to plain text when Telegram rejects the
//! entities), "typing", and file downloads, with Telegram's errors classified for the outbox.

use crate::api::{Api, CallError};
use async_trait::async_trait;
use std::time::Duration;
use switchboard_channel::{
    AudioAttachment, Button, Buttons, ChannelError, Drafts, Edits, Files, OutFile, Outbound,
    Sender, Target, Typing,
};
use teloxide::net::Download;
use teloxide::payloads::{
    DeleteMessage, EditMessageText, EditMessageTextSetters, GetFile, SendChatAction,
    SendChatActionSetters, SendMessage, SendMessageSetters,
};
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, FileId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode,
    ReplyMarkup, ReplyParameters, ThreadId,
};
use teloxide::{ApiError, RequestError};

pub(crate) struct TelegramSender {
    /// For file downloads (teloxide's, which do not stall on errors).
    bot: Bot,
    api: Api,
}

impl TelegramSender {
    pub fn new(bot: Bot, api: Api) -> Self {
        Self { bot, api }
    }
}

fn chat_id(t: &Target) -> Result<ChatId, ChannelError> {
    t.chat
        .parse::<i64>()
        .map(ChatId)
        .map_err(|_| ChannelError::Rejected(format!("`{}` is not a Telegram chat id", t.chat)))
}

fn message_id(s: &str) -> Option<MessageId> {
    s.parse::<i32>().ok().map(MessageId)
}

impl TelegramSender {
    /// Posts `m` as HTML (plain text if Telegram refuses the entities), with `markup` if given.
    async fn post(
        &self,
        m: &Outbound,
        markup: Option<ReplyMarkup>,
    ) -> Result<String, ChannelError> {
        let chat = chat_id(&m.target)?;
        let build = |text: String, html: bool| {
            let mut req = SendMessage::new(chat, text);
            if let Some(k) = &markup {
                req = req.reply_markup(k.clone());
            }
            if html {
                req = req.parse_mode(ParseMode::Html);
            }
            if let Some(t) = m.thread.as_deref().and_then(message_id) {
                req = req.message_thread_id(ThreadId(t));
            }
            if let Some(r) = m.reply_to.as_deref().and_then(message_id) {
                req = req.reply_parameters(ReplyParameters::new(r).allow_sending_without_reply());
            }
            req
        };
        let html = crate::html::markdown_to_html(&m.text);
        match self.api.call(&build(html, true)).await {
            Ok(sent) => Ok(sent.id.0.to_string()),
            Err(CallError::Request(RequestError::Api(ApiError::CantParseEntities(why)))) => {
                tracing::debug!(%why, "telegram refused our HTML; sending plain text");
                self.api
                    .call(&build(m.text.clone(), false))
                    .await
                    .map(|sent| sent.id.0.to_string())
                    .map_err(classify)
            }
            Err(e) => Err(classify(e)),
        }
    }
}

#[async_trait]
impl Sender for TelegramSender {
    async fn send(&self, m: &Outbound) -> Result<String, ChannelError> {
        self.post(m, None).await
    }

    fn max_len(&self) -> usize {
        4096
    }
}

/// Bot API limits: photos up to 10 MB (shown inline), other files up to 50 MB.
const PHOTO_MAX: usize = 10 * 1024 * 1024;
const FILE_MAX: u64 = 50 * 1024 * 1024;
const PHOTO_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];

/// Files: `sendPhoto` for images Telegram shows inline, else `sendDocument`, as multipart.
#[async_trait]
impl Files for TelegramSender {
    async fn send_file(&self, m: &Outbound, file: &OutFile) -> Result<String, ChannelError> {
        let chat = chat_id(&m.target)?;
        let photo = PHOTO_TYPES.contains(&file.mime.as_str()) && file.bytes.len() <= PHOTO_MAX;
        let (method, field) = if photo {
            ("sendPhoto", "photo")
        } else {
            ("sendDocument", "document")
        };
        let part = || {
            reqwest::multipart::Part::bytes(file.bytes.clone())
                .file_name(file.name.clone())
                .mime_str(&file.mime)
                .unwrap_or_else(|_| {
                    reqwest::multipart::Part::bytes(file.bytes.clone()).file_name(file.name.clone())
                })
        };
        let fields = |caption: String, html: bool| {
            let mut f = vec![("chat_id", chat.0.to_string())];
            if !caption.is_empty() {
                f.push(("caption", caption));
                if html {
                    f.push(("parse_mode", "HTML".to_string()));
                }
            }
            if let Some(t) = m.thread.as_deref().and_then(message_id) {
                f.push(("message_thread_id", t.0.to_string()));
            }
            if let Some(r) = m.reply_to.as_deref().and_then(message_id) {
                f.push((
                    "reply_parameters",
                    serde_json::json!({ "message_id": r.0, "allow_sending_without_reply": true })
                        .to_string(),
                ));
            }
            f
        };
        let html = crate::html::markdown_to_html(&m.text);
        let sent: Result<teloxide::types::Message, _> = self
            .api
            .upload(method, fields(html, true), field, part())
            .await;
        match sent {
            Ok(msg) => Ok(msg.id.0.to_string()),
            Err(CallError::Request(RequestError::Api(ApiError::CantParseEntities(_)))) => self
                .api
                .upload::<teloxide::types::Message>(
                    method,
                    fields(m.text.clone(), false),
                    field,
                    part(),
                )
                .await
                .map(|msg| msg.id.0.to_string())
                .map_err(classify),
            Err(e) => Err(classify(e)),
        }
    }

    fn max_file_bytes(&self) -> u64 {
        FILE_MAX
    }

    fn max_caption_len(&self) -> usize {
        1024
    }
}

/// Voice notes: `sendVoice` with the Ogg/Opus file as multipart, and its duration.
#[async_trait]
impl switchboard_channel::VoiceNotes for TelegramSender {
    async fn send_voice(
        &self,
        m: &Outbound,
        note: &switchboard_channel::VoiceNote,
    ) -> Result<String, ChannelError> {
        let chat = chat_id(&m.target)?;
        let mut fields = vec![
            ("chat_id", chat.0.to_string()),
            ("duration", (note.duration_secs.ceil() as u32).to_string()),
        ];
        if let Some(t) = m.thread.as_deref().and_then(message_id) {
            fields.push(("message_thread_id", t.0.to_string()));
        }
        if let Some(r) = m.reply_to.as_deref().and_then(message_id) {
            fields.push((
                "reply_parameters",
                serde_json::json!({ "message_id": r.0, "allow_sending_without_reply": true })
                    .to_string(),
            ));
        }
        let part = reqwest::multipart::Part::bytes(note.ogg.clone())
            .file_name("voice.ogg")
            .mime_str("audio/ogg")
            .map_err(|e| ChannelError::Rejected(format!("bad media type: {e}")))?;
        self.api
            .upload::<teloxide::types::Message>("sendVoice", fields, "voice", part)
            .await
            .map(|msg| msg.id.0.to_string())
            .map_err(classify)
    }
}

/// Inline keyboards: a press arrives as a `callback_query` (see `poll`).
#[async_trait]
impl Buttons for TelegramSender {
    async fn ask(&self, m: &Outbound, buttons: &[Button]) -> Result<String, ChannelError> {
        let row: Vec<InlineKeyboardButton> = buttons
            .iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()))
            .collect();
        let markup = ReplyMarkup::InlineKeyboard(InlineKeyboardMarkup::new(vec![row]));
        self.post(m, Some(markup)).await
    }

    async fn settle(&self, target: &Target, posted: &str, text: &str) -> Result<(), ChannelError> {
        // An edit without `reply_markup` removes the keyboard.
        Edits::edit(self, target, posted, text).await
    }
}

/// Edits in place (`editMessageText`, as HTML with the plain-text fallback) and deletion.
#[async_trait]
impl Edits for TelegramSender {
    async fn edit(&self, target: &Target, posted: &str, text: &str) -> Result<(), ChannelError> {
        let chat = chat_id(target)?;
        let id = message_id(posted)
            .ok_or_else(|| ChannelError::Rejected(format!("`{posted}` is not a message id")))?;
        let html = crate::html::markdown_to_html(text);
        let req = EditMessageText::new(chat, id, html).parse_mode(ParseMode::Html);
        let answer = match self.api.call(&req).await {
            Err(CallError::Request(RequestError::Api(ApiError::CantParseEntities(_)))) => self
                .api
                .call(&EditMessageText::new(chat, id, text.to_string()))
                .await
                .map(|_| ()),
            other => other.map(|_| ()),
        };
        match answer {
            // The text shown already is the text asked for: done.
            Err(CallError::Request(RequestError::Api(ApiError::MessageNotModified))) => Ok(()),
            other => other.map_err(classify),
        }
    }

    async fn delete(&self, target: &Target, posted: &str) -> Result<(), ChannelError> {
        let chat = chat_id(target)?;
        let id = message_id(posted)
            .ok_or_else(|| ChannelError::Rejected(format!("`{posted}` is not a message id")))?;
        match self.api.call(&DeleteMessage::new(chat, id)).await {
            Ok(_)
            | Err(CallError::Request(RequestError::Api(ApiError::MessageToDeleteNotFound))) => {
                Ok(())
            }
            Err(e) => Err(classify(e)),
        }
    }
}

/// Drafts (`sendMessageDraft`, Bot API 9.3) in private chats: a reply shown as it is written
/// without posting a message, replaced when the reply is sent.
#[async_trait]
impl Drafts for TelegramSender {
    fn drafts_in(&self, target: &Target, is_direct: bool) -> bool {
        // Private chats have positive ids; groups and channels negative ones.
        is_direct && target.chat.parse::<i64>().is_ok_and(|id| id > 0)
    }

    async fn draft(
        &self,
        target: &Target,
        thread: Option<&str>,
        draft_id: i64,
        text: &str,
    ) -> Result<(), ChannelError> {
        let chat = chat_id(target)?;
        let params = |text: String, html: bool| {
            let mut p =
                serde_json::json!({ "chat_id": chat.0, "draft_id": draft_id, "text": text });
            if html {
                p["parse_mode"] = "HTML".into();
            }
            if let Some(t) = thread.and_then(message_id) {
                p["message_thread_id"] = t.0.into();
            }
            p
        };
        let html = crate::html::markdown_to_html(text);
        match self
            .api
            .call_raw::<bool>("sendMessageDraft", &params(html, true))
            .await
        {
            Ok(_) => Ok(()),
            Err(CallError::Request(RequestError::Api(ApiError::CantParseEntities(_)))) => self
                .api
                .call_raw::<bool>("sendMessageDraft", &params(text.to_string(), false))
                .await
                .map(|_| ())
                .map_err(classify),
            Err(e) => Err(classify(e)),
        }
    }
}

#[async_trait]
impl Typing for TelegramSender {
    async fn typing(&self, target: &Target, thread: Option<&str>) -> Result<(), ChannelError> {
        let mut req = SendChatAction::new(chat_id(target)?, ChatAction::Typing);
        if let Some(t) = thread.and_then(message_id) {
            req = req.message_thread_id(ThreadId(t));
        }
        self.api.call(&req).await.map(|_| ()).map_err(classify)
    }
}

#[async_trait]
impl switchboard_channel::FileFetcher for TelegramSender {
    async fn fetch_file(
        &self,
        f: &switchboard_channel::FileAttachment,
    ) -> Result<Vec<u8>, ChannelError> {
        self.download(&f.file_ref).await
    }
}

impl TelegramSender {
    async fn download(&self, file_id: &str) -> Result<Vec<u8>, ChannelError> {
        let file = self
            .api
            .call(&GetFile::new(FileId(file_id.to_string())))
            .await
            .map_err(classify)?;
        let mut buf: Vec<u8> = Vec::new();
        self.bot
            .download_file(&file.path, &mut buf)
            .await
            .map_err(|e| ChannelError::Transient(redact(&e.to_string())))?;
        Ok(buf)
    }
}

#[async_trait]
impl switchboard_channel::AudioFetcher for TelegramSender {
    async fn fetch(&self, a: &AudioAttachment) -> Result<Vec<u8>, ChannelError> {
        self.download(&a.file_ref).await
    }
}

/// Telegram's error → what the outbox should do about it.
pub(crate) fn classify(e: CallError) -> ChannelError {
    let e = match e {
        CallError::Server { .. } => return ChannelError::Transient(e.to_string()),
        CallError::Request(e) => e,
    };
    match e {
        RequestError::RetryAfter(s) => ChannelError::RateLimited {
            retry_after: Duration::from_secs(s.seconds().into()),
        },
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            ChannelError::Transient(describe(&e))
        }
        RequestError::Api(ApiError::InvalidToken) => ChannelError::Unauthorized(
            "the bot token was rejected; check channels.telegram.token".into(),
        ),
        RequestError::Api(ApiError::Unknown(ref s)) if is_server_side(s) => {
            ChannelError::Transient(describe(&e))
        }
        other => ChannelError::Rejected(describe(&other)),
    }
}

fn is_server_side(description: &str) -> bool {
    let d = description.to_lowercase();
    [
        "bad gateway",
        "internal server error",
        "service unavailable",
        "gateway timeout",
        "too many requests",
    ]
    .iter()
    .any(|k| d.contains(k))
}

/// The error as text, with the bot token (part of every Bot API URL) removed.
pub(crate) fn describe(e: &RequestError) -> String {
    redact(&e.to_string())
}

/// Replaces the token in `/bot<TOKEN>/` paths.
pub(crate) fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/bot") {
        out.push_str(&rest[..i + 4]);
        let after = &rest[i + 4..];
        match after.find('/') {
            Some(j) if j > 0 => {
                out.push_str("***");
                rest = &after[j..];
            }
            _ => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_from_urls() {
        assert_eq!(
            redact("error sending request for url (http://127.0.0.1:1/bot123:ABC/SendMessage)"),
            "error sending request for url (http://127.0.0.1:1/bot***/SendMessage)"
        );
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(
            redact("/file/bot9:X/voice/a.oga"),
            "/file/bot***/voice/a.oga"
        );
    }
}
