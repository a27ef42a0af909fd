//! The Discord channel: serenity's gateway (GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT)
//! converted to the channel contract at the edge, and REST sends over reqwest.
//!
//! - `convert`: serenity messages → our [`Inbound`](switchboard_channel::Inbound).
//! - `gateway`: the serenity client, its event handler, reconnects and fatal close codes.
//! - `rest`: posting, typing, DM channels, history after a gap, attachments, slash commands.
//!
//! Why REST is not serenity's: with a custom base URL serenity's rate limiter must be disabled
//! (it would call discord.com), and its errors then drop the `Retry-After` and rate-limit headers.
//! Posting through reqwest keeps them, so the outbox can honour them.

mod convert;
mod gateway;
mod rest;

/// Re-exported so tests can check fixtures against the real types.
pub use serenity;

use std::sync::Arc;
use switchboard_channel::{ChannelHandle, ChannelState, Health};

#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub token: String,
    /// REST root, e.g. `https://discord.com/api`.
    pub api_url: String,
    /// Guilds served: slash commands are registered in each (instant), else globally.
    pub guilds: Vec<String>,
    /// Only these shards of `total` (`None`: the one shard a single gateway runs).
    pub shards: Option<(std::ops::Range<u32>, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("discord: `{0}` is not a valid apiUrl")]
    ApiUrl(String),
}

/// Builds the REST client and the channel handle at once; the returned [`gateway::Runner`]
/// connects to the gateway when run.
pub fn connect(
    settings: DiscordSettings,
) -> Result<(ChannelHandle, gateway::Runner), DiscordError> {
    let api = settings.api_url.trim_end_matches('/').to_string();
    if reqwest::Url::parse(&api).is_err() {
        return Err(DiscordError::ApiUrl(api));
    }
    let rest = Arc::new(rest::Rest::new(&api, &settings.token));
    let health = Health::new(ChannelState::Starting);
    let handle = ChannelHandle::new("discord", rest.clone())
        .with_typing(rest.clone())
        .with_audio(rest.clone())
        .with_buttons(rest.clone())
        .with_files(rest.clone())
        .with_edits(rest.clone())
        .with_voice_notes(rest.clone())
        .with_file_fetcher(rest.clone())
        .with_health(health.clone());
    Ok((handle, gateway::Runner::new(settings, rest, health)))
}

pub use gateway::Runner;
