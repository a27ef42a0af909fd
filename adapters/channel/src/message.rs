use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A chat on some channel: `telegram:CHAT_ID`, `discord:channel:ID`, `discord:dm:USER_ID`,
/// `local:NAME`. `chat` is everything after the first colon and is opaque to the core.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub channel: String,
    pub chat: String,
}

impl Target {
    pub fn new(channel: impl Into<String>, chat: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            chat: chat.into(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel, self.chat)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid target `{0}`: expected telegram:CHAT_ID, discord:channel:ID, discord:dm:USER_ID, local:NAME or web:NAME"
)]
pub struct TargetError(pub String);

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TargetError(s.to_string());
        let (channel, chat) = s.split_once(':').ok_or_else(err)?;
        if chat.is_empty() || chat.chars().any(char::is_whitespace) {
            return Err(err());
        }
        let valid = match channel {
            "telegram" => chat.parse::<i64>().is_ok(),
            "discord" => match chat.split_once(':') {
                Some(("channel" | "dm", id)) => !id.is_empty() && id.parse::<u64>().is_ok(),
                _ => false,
            },
            "local" | "web" => true,
            _ => false,
        };
        if valid {
            Ok(Target::new(channel, chat))
        } else {
            Err(err())
        }
    }
}

/// Who sent an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Sender {
    /// The platform's user id, as text.
    pub id: String,
    /// A display name, for prompts and logs.
    pub name: Option<String>,
}

/// Audio attached to an inbound message (a voice note, an audio file). The adapter fills in what
/// the platform tells before download, so size caps apply before fetching anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioAttachment {
    /// Whatever the adapter needs to download it (a file id, a URL).
    pub file_ref: String,
    pub mime_type: Option<String>,
    pub size_bytes: Option<u64>,
    pub duration_secs: Option<u32>,
}

/// What kind of file a user sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A photo or image file (for vision models).
    Image,
    /// A PDF, a text file, anything else.
    Document,
}

/// A file attached to an inbound message. Like audio, what the platform tells before download
/// (size, type) is filled in, so limits apply before anything is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAttachment {
    pub file_ref: String,
    pub kind: FileKind,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<u64>,
}

/// A message a user sent, in our terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The chat it came from; replies go back here.
    pub chat: Target,
    /// A thread or forum topic within the chat, kept so the answer lands in it.
    pub thread: Option<String>,
    /// The server the chat belongs to, where the platform has them (a Discord guild id).
    #[serde(default)]
    pub space: Option<String>,
    pub sender: Sender,
    pub text: String,
    pub audio: Option<AudioAttachment>,
    /// Photos, images and documents sent with it (the text is their caption).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileAttachment>,
    /// The platform's id of this message: with `chat.channel` it identifies the message, so a
    /// redelivered message is recognised.
    pub message_id: String,
    /// The text of the message this one replies to, when the platform gives it.
    pub reply_to_text: Option<String>,
    /// A one-to-one chat with the bot rather than a group.
    pub is_direct: bool,
    /// The bot was @-mentioned or replied to (matters for groups with `requireMention`).
    pub mentions_bot: bool,
}

impl Inbound {
    /// A direct text message, as the local channel and tests make them.
    pub fn direct(chat: Target, sender_id: &str, message_id: &str, text: &str) -> Self {
        Self {
            chat,
            thread: None,
            space: None,
            sender: Sender {
                id: sender_id.to_string(),
                name: None,
            },
            text: text.to_string(),
            audio: None,
            files: Vec::new(),
            message_id: message_id.to_string(),
            reply_to_text: None,
            is_direct: true,
            mentions_bot: false,
        }
    }
}

/// A button under a posted message: what it says, and the data a press hands back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    /// At most 64 bytes (Telegram's `callback_data` limit; Discord allows 100).
    pub data: String,
    /// How the platform may colour it, where it can.
    pub kind: ButtonKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ButtonKind {
    Positive,
    Negative,
    Neutral,
}

/// Someone pressed a button the bot posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Press {
    pub chat: Target,
    pub sender: Sender,
    /// The platform id of the message the button is under.
    pub message_id: String,
    /// The pressed [`Button::data`].
    pub data: String,
}

/// A file to post (an image is shown as a photo where the platform does that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub name: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// A voice note to post: Ogg/Opus audio, its length and its waveform (256 values 0–255, what
/// Discord draws).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceNote {
    pub ogg: Vec<u8>,
    pub duration_secs: f32,
    pub waveform: Vec<u8>,
}

/// A message to post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    pub target: Target,
    pub thread: Option<String>,
    /// The platform message id this answers, so the platform can show it as a reply.
    pub reply_to: Option<String>,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_target_form() {
        assert_eq!(
            "telegram:-1001234".parse::<Target>(),
            Ok(Target::new("telegram", "-1001234"))
        );
        assert_eq!(
            "discord:channel:234567890123456789".parse::<Target>(),
            Ok(Target::new("discord", "channel:234567890123456789"))
        );
        assert_eq!(
            "discord:dm:42".parse::<Target>(),
            Ok(Target::new("discord", "dm:42"))
        );
        assert_eq!("local:me".parse::<Target>(), Ok(Target::new("local", "me")));
        for bad in [
            "telegram:abc",
            "discord:42",
            "discord:channel:",
            "slack:1",
            "local:",
            "nocolon",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad} should be rejected");
        }
        assert_eq!(
            Target::new("discord", "dm:42").to_string(),
            "discord:dm:42".to_string()
        );
    }
}
