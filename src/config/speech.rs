//! Spoken replies: `voice.reply` and `tts`.

use serde::{Deserialize, Serialize};

/// When a reply also comes back as a voice note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VoiceReply {
    /// Text only (the default).
    #[default]
    Off,
    /// A voice note answers a voice note.
    Spoken,
    /// Every reply.
    Always,
}

/// The speech engine: an OpenAI-compatible `/audio/speech` API (`provider` names a configured
/// provider whose `baseUrl` and `apiKey` are used unless given here), or a local `command` that
/// reads text on stdin and writes WAV on stdout.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TtsConfig {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default = "default_tts_model")]
    pub model: String,
    #[serde(default = "default_tts_voice")]
    pub voice: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default = "default_tts_timeout")]
    pub timeout_seconds: u64,
}

fn default_tts_model() -> String {
    "gpt-4o-mini-tts".into()
}

fn default_tts_voice() -> String {
    "alloy".into()
}

fn default_tts_timeout() -> u64 {
    60
}
