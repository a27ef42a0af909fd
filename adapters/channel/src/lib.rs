//! The channel contract.
//!
//! Every chat platform (Telegram, Discord, the local terminal) is an *adapter* that converts its own
//! types into the plain types in this crate at the edge. Nothing above the adapters knows which
//! platform a message came from: the core sees [`Inbound`] messages, answers with [`Outbound`]
//! ones, and addresses chats by [`Target`].
//!
//! The contract is a handful of small one-way traits instead of one fat `Channel` trait:
//! - [`InboundSink`]: implemented by the core; an adapter hands it each message it receives and
//!   acknowledges the message to its platform only after the sink has stored it.
//! - [`Sender`]: implemented by an adapter; posts one text message to a chat.
//! - [`Typing`], [`AudioFetcher`], [`Buttons`], [`Files`], [`FileFetcher`], [`Edits`],
//!   [`Drafts`], [`VoiceNotes`]: optional capabilities, exposed through [`ChannelHandle`]'s accessors, so a
//!   platform without them says so in its type rather than with a runtime no-op.
//!
//! Failures are [`ChannelError`]s that say whether trying again can help; an adapter's running
//! state ([`Health`]) is what `gateway status` shows, so a stopped channel is never silent.

mod backoff;
mod commands;
mod error;
mod health;
mod message;
mod split;

pub use backoff::{jittered, retry_delay};
pub use commands::{COMMANDS, CommandInfo};
pub use error::{ChannelError, SinkError};
pub use health::{ChannelState, Health, HealthReport};
pub use message::{
    AudioAttachment, Button, ButtonKind, FileAttachment, FileKind, Inbound, OutFile, Outbound,
    Press, Sender as SenderInfo, Target, TargetError, VoiceNote,
};
pub use split::{split_message, units as utf16_len};

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Where adapters hand inbound messages. Implemented by the core.
///
/// `accept` returns only once the message is durably stored, so an adapter may then acknowledge it
/// to the platform (move Telegram's update offset, for example). A duplicate (same channel and
/// platform message id) is accepted and ignored, so redelivery after a crash is harmless.
#[async_trait]
pub trait InboundSink: Send + Sync {
    async fn accept(&self, message: Inbound) -> Result<(), SinkError>;

    /// Several messages received together (a page of Telegram updates), in order, under the same
    /// contract as `accept`: when it returns `Ok`, all are durably stored. The core stores them in
    /// one transaction instead of one each.
    async fn accept_batch(&self, messages: Vec<Inbound>) -> Result<(), SinkError> {
        for m in messages {
            self.accept(m).await?;
        }
        Ok(())
    }

    /// A command given through the platform's own command UI (a Discord slash command), under the
    /// contract of `accept`. Returns whether an answer will come (the message was admitted, or
    /// the sender is told how to pair); `false` means it was refused, and the adapter says so.
    async fn accept_command(&self, message: Inbound) -> Result<bool, SinkError> {
        self.accept(message).await.map(|_| true)
    }

    /// A button was pressed (on a platform with [`Buttons`]). Returns a short notice to show
    /// only to the presser (a toast, an ephemeral reply), or `None` for nothing; the adapter
    /// acknowledges the press to the platform with it.
    async fn pressed(&self, press: Press) -> Option<String> {
        let _ = press;
        None
    }
}

/// Posts messages to a chat on one platform.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Posts `message.text` (already split to fit [`Sender::max_len`]) and returns the platform's
    /// id for the posted message.
    async fn send(&self, message: &Outbound) -> Result<String, ChannelError>;

    /// The platform's message length limit, in characters.
    fn max_len(&self) -> usize;
}

/// How often callers renew "typing…": platforms expire the indicator after about five seconds.
pub const TYPING_RENEW_EVERY: Duration = Duration::from_secs(4);

/// Shows "typing…" in a chat, until it expires or a message is posted there.
#[async_trait]
pub trait Typing: Send + Sync {
    async fn typing(&self, target: &Target, thread: Option<&str>) -> Result<(), ChannelError>;
}

/// Downloads the audio attached to an inbound message.
#[async_trait]
pub trait AudioFetcher: Send + Sync {
    async fn fetch(&self, attachment: &AudioAttachment) -> Result<Vec<u8>, ChannelError>;
}

/// Posts a question with buttons under it, and later replaces it with its outcome.
#[async_trait]
pub trait Buttons: Send + Sync {
    /// Posts `message` with `buttons` in one row; returns the platform's message id.
    async fn ask(&self, message: &Outbound, buttons: &[Button]) -> Result<String, ChannelError>;
    /// Replaces the text of message `message_id` with `text` and removes its buttons.
    async fn settle(
        &self,
        target: &Target,
        message_id: &str,
        text: &str,
    ) -> Result<(), ChannelError>;
}

/// Posts files.
#[async_trait]
pub trait Files: Send + Sync {
    /// Posts `file` with `message.text` (at most [`Files::max_caption_len`]) as its caption;
    /// returns the platform's message id.
    async fn send_file(&self, message: &Outbound, file: &OutFile) -> Result<String, ChannelError>;
    /// The largest file the platform takes from a bot, in bytes.
    fn max_file_bytes(&self) -> u64;
    fn max_caption_len(&self) -> usize;
}

/// Posts voice notes (a Telegram voice message, a Discord voice message).
#[async_trait]
pub trait VoiceNotes: Send + Sync {
    /// Posts `note` to `message.target` (its text is not shown: the text of a reply is posted
    /// on its own); returns the platform's message id.
    async fn send_voice(
        &self,
        message: &Outbound,
        note: &VoiceNote,
    ) -> Result<String, ChannelError>;
}

/// Downloads a file attached to an inbound message.
#[async_trait]
pub trait FileFetcher: Send + Sync {
    async fn fetch_file(&self, file: &FileAttachment) -> Result<Vec<u8>, ChannelError>;
}

/// Changes messages the bot posted: how a reply being written is shown in place, then completed.
#[async_trait]
pub trait Edits: Send + Sync {
    /// Replaces the text of message `message_id` (rendered as [`Sender::send`] renders it).
    /// Text equal to what is shown is not an error.
    async fn edit(&self, target: &Target, message_id: &str, text: &str)
    -> Result<(), ChannelError>;
    /// Deletes message `message_id`; one already gone is not an error.
    async fn delete(&self, target: &Target, message_id: &str) -> Result<(), ChannelError>;
}

/// Shows a reply as a draft while it is written (Telegram's `sendMessageDraft`): nothing is
/// posted until the real message is sent, which replaces the draft.
#[async_trait]
pub trait Drafts: Send + Sync {
    /// Whether drafts can be shown in `target` (a direct chat, on Telegram).
    fn drafts_in(&self, target: &Target, is_direct: bool) -> bool;
    /// Shows `text` (at most [`Sender::max_len`]) as draft `draft_id` (non-zero; updates of one
    /// id replace each other).
    async fn draft(
        &self,
        target: &Target,
        thread: Option<&str>,
        draft_id: i64,
        text: &str,
    ) -> Result<(), ChannelError>;
}

/// Shows a reply as it is written, every change as it comes: a client that holds an open stream
/// (a browser) has no edit rate limit to pace against, so the core hands it the text itself.
pub trait Live: Send + Sync {
    /// Follows `text` (the reply to message `reply_to` in `target` so far) until its sender is
    /// dropped. The complete reply is still sent with [`Sender::send`] and replaces what was shown.
    fn follow(&self, target: &Target, reply_to: &str, text: tokio::sync::watch::Receiver<String>);
}

/// What the core holds for one channel: its name, its sender and its optional capabilities.
#[derive(Clone)]
pub struct ChannelHandle {
    name: String,
    sender: Arc<dyn Sender>,
    typing: Option<Arc<dyn Typing>>,
    audio: Option<Arc<dyn AudioFetcher>>,
    buttons: Option<Arc<dyn Buttons>>,
    files: Option<Arc<dyn Files>>,
    fetch: Option<Arc<dyn FileFetcher>>,
    edits: Option<Arc<dyn Edits>>,
    drafts: Option<Arc<dyn Drafts>>,
    voice: Option<Arc<dyn VoiceNotes>>,
    live: Option<Arc<dyn Live>>,
    health: Health,
}

impl ChannelHandle {
    pub fn new(name: impl Into<String>, sender: Arc<dyn Sender>) -> Self {
        Self {
            name: name.into(),
            sender,
            typing: None,
            audio: None,
            buttons: None,
            files: None,
            fetch: None,
            edits: None,
            drafts: None,
            voice: None,
            live: None,
            health: Health::default(),
        }
    }

    /// The state the adapter keeps (connected, retrying, stopped) for status and doctor.
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = health;
        self
    }

    pub fn health(&self) -> HealthReport {
        self.health.report()
    }

    pub fn with_typing(mut self, typing: Arc<dyn Typing>) -> Self {
        self.typing = Some(typing);
        self
    }

    pub fn with_audio(mut self, audio: Arc<dyn AudioFetcher>) -> Self {
        self.audio = Some(audio);
        self
    }

    pub fn with_buttons(mut self, buttons: Arc<dyn Buttons>) -> Self {
        self.buttons = Some(buttons);
        self
    }

    /// `None` when the platform has no buttons (the core then asks in text).
    pub fn buttons(&self) -> Option<&dyn Buttons> {
        self.buttons.as_deref()
    }

    pub fn with_files(mut self, files: Arc<dyn Files>) -> Self {
        self.files = Some(files);
        self
    }

    /// `None` when the channel cannot post files.
    pub fn files(&self) -> Option<&dyn Files> {
        self.files.as_deref()
    }

    pub fn with_file_fetcher(mut self, fetch: Arc<dyn FileFetcher>) -> Self {
        self.fetch = Some(fetch);
        self
    }

    /// `None` when files sent to the bot cannot be downloaded.
    pub fn file_fetcher(&self) -> Option<&dyn FileFetcher> {
        self.fetch.as_deref()
    }

    pub fn with_edits(mut self, edits: Arc<dyn Edits>) -> Self {
        self.edits = Some(edits);
        self
    }

    /// `None` when posted messages cannot be changed (replies are then never streamed in place).
    pub fn edits(&self) -> Option<&dyn Edits> {
        self.edits.as_deref()
    }

    pub fn with_voice_notes(mut self, voice: Arc<dyn VoiceNotes>) -> Self {
        self.voice = Some(voice);
        self
    }

    /// `None` when the platform has no voice notes (a spoken reply is then not posted).
    pub fn voice_notes(&self) -> Option<&dyn VoiceNotes> {
        self.voice.as_deref()
    }

    pub fn with_drafts(mut self, drafts: Arc<dyn Drafts>) -> Self {
        self.drafts = Some(drafts);
        self
    }

    /// `None` when the platform has no drafts.
    pub fn drafts(&self) -> Option<&dyn Drafts> {
        self.drafts.as_deref()
    }

    pub fn with_live(mut self, live: Arc<dyn Live>) -> Self {
        self.live = Some(live);
        self
    }

    /// `None` unless the channel takes a reply's text as it is written (see [`Live`]).
    pub fn live(&self) -> Option<&dyn Live> {
        self.live.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn sender(&self) -> &dyn Sender {
        self.sender.as_ref()
    }

    /// `None` when the platform has no typing indicator.
    pub fn typing(&self) -> Option<&dyn Typing> {
        self.typing.as_deref()
    }

    /// `None` when the platform cannot carry audio.
    pub fn audio(&self) -> Option<&dyn AudioFetcher> {
        self.audio.as_deref()
    }
}

/// Compares a secret someone presented with the one expected without giving away, through the
/// time taken, how much of it matched (gateway tokens, CSRF tokens, webhook secrets).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
