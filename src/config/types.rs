//! The config file's shape, exactly the keys SPEC.md documents.
//!
//! Every struct denies unknown keys, so a misspelt key is an error with a suggestion rather than
//! a silently ignored setting. Defaults live beside the fields they belong to.

pub use super::ops::*;
pub use super::speech::*;
pub use super::tools::*;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// IANA time zone; `None` means the system's.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub models: ModelsConfig,
    #[serde(default = "default_agents")]
    pub agents: BTreeMap<String, AgentConfig>,
    #[serde(default)]
    pub channels: ChannelsConfig,
    #[serde(default)]
    pub routing: Vec<RouteRule>,
    #[serde(default)]
    pub workers: WorkersConfig,
    #[serde(default)]
    pub voice: VoiceConfig,
    #[serde(default)]
    pub compaction: CompactionConfig,
    #[serde(default)]
    pub memory: MemoryConfig,
    #[serde(default)]
    pub tools: ToolsConfig,
    #[serde(default)]
    pub skills: SkillsConfig,
    #[serde(default)]
    pub mcp: McpConfig,
    /// The speech engine for spoken replies (`voice.reply`).
    #[serde(default)]
    pub tts: Option<TtsConfig>,
    /// A periodic check-in run (off when absent).
    #[serde(default)]
    pub heartbeat: Option<HeartbeatConfig>,
    /// The target told about problems that need a person (log only when absent).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub budgets: BudgetsConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub store: StoreConfig,
}

/// Where state is kept: the SQLite file in the state dir, or a PostgreSQL database that several
/// gateways may share.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StoreConfig {
    /// `"sqlite"` or `"postgres://user:pass@host:port/db"` (`?sslmode=require` for TLS).
    #[serde(default = "default_store_url")]
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
        }
    }
}

fn default_store_url() -> String {
    "sqlite".into()
}

/// Where skills are found besides `<stateDir>/skills` and each workspace's `skills/`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SkillsConfig {
    /// Extra folders, each holding one folder per skill (`~` is expanded).
    #[serde(default)]
    pub dirs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoryConfig {
    /// Characters of IDENTITY.md, MEMORY.md and the daily notes put into each prompt; what does
    /// not fit is left out with a note saying so (the search tool still finds it).
    #[serde(default = "default_prompt_chars")]
    pub prompt_chars: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            prompt_chars: default_prompt_chars(),
        }
    }
}

fn default_prompt_chars() -> usize {
    24_000
}

fn default_state_dir() -> String {
    "~/.switchboard".into()
}

fn default_agents() -> BTreeMap<String, AgentConfig> {
    BTreeMap::from([(
        "jarvis".to_string(),
        AgentConfig {
            coordinator: true,
            model: Some("default".into()),
            workspace: None,
            tools: Default::default(),
        },
    )])
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    /// `loopback`, `lan`, or an explicit IP address.
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Bearer token for the HTTP API; empty means none.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub token: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            port: default_port(),
            token: None,
        }
    }
}

fn default_bind() -> String {
    "loopback".into()
}

fn default_port() -> u16 {
    18789
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic's Messages API.
    Anthropic,
    /// OpenAI-compatible chat completions (OpenAI, Moonshot, Groq, Gemini, Ollama, OpenRouter…).
    Openai,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderConfig {
    /// Defaults to `anthropic` for a provider named "anthropic", else `openai`.
    #[serde(default)]
    pub kind: Option<ProviderKind>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub api_key: Option<String>,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
    /// Whether its models see images; `false`: they get a note of what was sent instead.
    #[serde(default = "yes")]
    pub vision: bool,
    /// Prices of its models (USD per million tokens), over the built-in list.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
}

fn default_provider_timeout() -> u64 {
    120
}

impl ProviderConfig {
    pub fn kind_for(&self, name: &str) -> ProviderKind {
        self.kind.unwrap_or(if name == "anthropic" {
            ProviderKind::Anthropic
        } else {
            ProviderKind::Openai
        })
    }
}

/// Roles (`default`, `coding`, any name) mapped to `provider/model`, plus the fallback chain.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ModelsConfig {
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(flatten)]
    pub roles: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentConfig {
    #[serde(default)]
    pub coordinator: bool,
    /// A role from `models` or a `provider/model`; default: the `default` role.
    #[serde(default)]
    pub model: Option<String>,
    /// Default: `<stateDir>/agents/NAME`.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Which tools this agent is offered.
    #[serde(default)]
    pub tools: AgentTools,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Pairing,
    Allowlist,
    Open,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelsConfig {
    #[serde(default)]
    pub telegram: Option<TelegramConfig>,
    #[serde(default)]
    pub discord: Option<DiscordConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TelegramConfig {
    #[serde(default, deserialize_with = "empty_as_none")]
    pub token: Option<String>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    #[serde(default, deserialize_with = "ids")]
    pub allow_from: Vec<String>,
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// Replies shown as they are written (a draft in private chats, else edited in place).
    #[serde(default = "yes")]
    pub streaming: bool,
    #[serde(default = "default_telegram_api")]
    pub api_url: String,
    /// Updates pushed to this gateway's HTTP server instead of long polling.
    #[serde(default)]
    pub webhook: Option<TelegramWebhook>,
}

/// `channels.telegram.webhook`: the public HTTPS address Telegram posts updates to (its path
/// is served on the gateway's port), and the secret Telegram sends with each.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TelegramWebhook {
    pub url: String,
    pub secret: String,
}

impl TelegramWebhook {
    /// The path the gateway serves it on (`/tg` for `https://bot.example.com/tg`).
    pub fn path(&self) -> String {
        reqwest::Url::parse(&self.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupConfig {
    #[serde(default = "yes")]
    pub require_mention: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscordConfig {
    #[serde(default, deserialize_with = "empty_as_none")]
    pub token: Option<String>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    #[serde(default, deserialize_with = "ids")]
    pub allow_from: Vec<String>,
    #[serde(default = "yes")]
    pub require_mention: bool,
    #[serde(default)]
    pub guilds: BTreeMap<String, GuildConfig>,
    /// Replies shown as they are written (one message edited in place).
    #[serde(default = "yes")]
    pub streaming: bool,
    #[serde(default = "default_discord_api")]
    pub api_url: String,
    /// This gateway runs only these shards of the bot (guilds are split over gateways).
    #[serde(default)]
    pub shards: Option<DiscordShards>,
}

/// `channels.discord.shards`: `{ total: 4, ids: "0-1" }` runs shards 0 and 1 of 4 here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscordShards {
    pub total: u32,
    /// One id (`"2"`) or an inclusive range (`"0-1"`).
    pub ids: String,
}

impl DiscordShards {
    /// The shard ids as a half-open range, when `ids` reads and fits within `total`.
    pub fn range(&self) -> Result<std::ops::Range<u32>, String> {
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{}` is not a shard id or a range like 0-1", self.ids))
        };
        let (first, last) = match self.ids.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let one = parse(&self.ids)?;
                (one, one)
            }
        };
        if self.total == 0 {
            return Err("total must be at least 1".into());
        }
        if first > last || last >= self.total {
            return Err(format!(
                "`{}` is not within shards 0-{} of {}",
                self.ids,
                self.total - 1,
                self.total
            ));
        }
        Ok(first..last + 1)
    }
}

fn default_discord_api() -> String {
    "https://discord.com/api".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GuildConfig {
    /// Channel ids served in this guild, or `"*"` (the default) for all.
    #[serde(default)]
    pub channels: Option<GuildChannels>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum GuildChannels {
    /// `"*"`: every channel.
    All(AllMarker),
    List(#[serde(deserialize_with = "ids")] Vec<String>),
}

/// The literal string `"*"`.
#[derive(Debug, Clone, Serialize)]
pub struct AllMarker(String);

impl<'de> Deserialize<'de> for AllMarker {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "*" {
            Ok(AllMarker(s))
        } else {
            Err(serde::de::Error::custom(
                "expected \"*\" or a list of channel ids",
            ))
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteRule {
    #[serde(rename = "match")]
    pub match_: RouteMatch,
    pub agent: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteMatch {
    #[serde(default)]
    pub channel: Option<String>,
    /// The chat id as the platform gives it (a Telegram chat, a Discord channel or guild id).
    #[serde(default, deserialize_with = "opt_id")]
    pub chat: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkersConfig {
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    #[serde(default = "default_worker_timeout")]
    pub timeout_seconds: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            max_concurrent: default_max_concurrent(),
            timeout_seconds: default_worker_timeout(),
        }
    }
}

fn default_max_concurrent() -> usize {
    4
}

fn default_worker_timeout() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VoiceConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_voice_model")]
    pub model: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default = "default_voice_threads")]
    pub threads: u16,
    #[serde(default = "default_max_seconds")]
    pub max_seconds: u32,
    #[serde(default = "yes")]
    pub echo_transcript: bool,
    /// When replies also come back as voice notes (`tts` says how they are spoken).
    #[serde(default)]
    pub reply: VoiceReply,
    /// Where a model named by catalogue name is fetched from (a mirror), and the SHA-256 to
    /// check instead of the pinned one (a mirror of your own conversion).
    #[serde(default)]
    pub model_url: Option<String>,
    #[serde(default)]
    pub model_sha256: Option<String>,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: default_voice_model(),
            language: default_language(),
            threads: default_voice_threads(),
            max_seconds: default_max_seconds(),
            echo_transcript: true,
            reply: VoiceReply::Off,
            model_url: None,
            model_sha256: None,
        }
    }
}

fn default_voice_model() -> String {
    "base.en".into()
}

fn default_language() -> String {
    "en".into()
}

fn default_voice_threads() -> u16 {
    2
}

fn default_max_seconds() -> u32 {
    300
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompactionConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_threshold")]
    pub threshold: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: default_threshold(),
        }
    }
}

fn default_threshold() -> u64 {
    50_000
}

pub(super) fn yes() -> bool {
    true
}

/// `""` (what `${VAR:-}` gives for an unset variable) means "not set".
pub(super) fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    Ok(v.filter(|s| !s.trim().is_empty()))
}

/// Platform ids may be written as numbers or strings; we keep them as strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Num(i64),
    Str(String),
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        match id {
            Id::Num(n) => n.to_string(),
            Id::Str(s) => s,
        }
    }
}

fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Id>::deserialize(d)?
        .into_iter()
        .map(String::from)
        .collect())
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Id>::deserialize(d)?.map(String::from))
}
