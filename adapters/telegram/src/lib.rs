//! The Telegram channel: teloxide (long polling, rustls) converted to the channel contract.
//!
//! - `convert`: Telegram updates → our [`Inbound`](switchboard_channel::Inbound) (the only place
//!   that reads teloxide's message types).
//! - `poll`: the `getUpdates` loop; the offset moves past an update only after the core stored it.
//! - `send`: posting, typing and file download, with Telegram errors classified.
//! - `html`: the model's Markdown rendered as Telegram HTML.
//! - `webhook`: webhook mode, updates pushed to the gateway's HTTP server instead of polled.

mod api;
mod convert;
mod html;
mod poll;
mod send;
mod webhook;

pub use webhook::{Outcome as WebhookOutcome, SECRET_HEADER as WEBHOOK_SECRET_HEADER, Webhook};

pub use html::markdown_to_html;
/// Re-exported so tests can check fixtures against the real types.
pub use teloxide;

use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::{ChannelHandle, ChannelState, Health, InboundSink};
use teloxide::payloads::{DeleteWebhook, GetMe, SetMyCommands, SetWebhook, SetWebhookSetters};
use teloxide::prelude::*;
use teloxide::types::AllowedUpdate;
use teloxide::types::BotCommand;
use tokio_util::sync::CancellationToken;

/// What the adapter needs from the config.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub token: String,
    /// Bot API root, e.g. `https://api.telegram.org`.
    pub api_url: String,
    /// Long-poll timeout asked of Telegram.
    pub poll_timeout: Duration,
    /// Webhook mode: the public URL Telegram posts to and the secret it sends with each update.
    pub webhook: Option<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("telegram: `{0}` is not a valid apiUrl")]
    ApiUrl(String),
    #[error("telegram: the bot token was rejected (getMe: {0}); check channels.telegram.token")]
    Token(String),
    #[error("telegram: cannot reach the Bot API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// The bot's own identity, for mention detection.
#[derive(Debug, Clone)]
pub(crate) struct BotInfo {
    pub id: u64,
    pub username: String,
}

/// Builds the client and the channel handle (for sending) at once; returns the poller, which
/// [`Poller::run`]s until shutdown. Telegram being unreachable at start-up is not fatal: the
/// poller keeps trying, and the outbox keeps retrying sends.
pub fn connect(settings: TelegramSettings) -> Result<(ChannelHandle, Poller), TelegramError> {
    let url = reqwest_url(&settings.api_url)?;
    let client = teloxide::net::default_reqwest_settings()
        .tcp_nodelay(true)
        // A burst to many chats sends on up to 16 connections at once (the outbox's limit).
        // Keeping only 4 idle closed the rest after each send and the next one connected again
        // (over TLS, a handshake each). Idle ones close after reqwest's 90 s.
        .pool_max_idle_per_host(16)
        // Long polls hold the request open for `poll_timeout`; allow for it.
        .timeout(settings.poll_timeout + Duration::from_secs(20))
        .build()
        .map_err(|e| TelegramError::Unreachable {
            url: settings.api_url.clone(),
            reason: e.to_string(),
        })?;
    let bot = Bot::with_client(settings.token.clone(), client.clone()).set_api_url(url.clone());
    let api = api::Api::new(client, url, settings.token.clone());
    let webhook = settings
        .webhook
        .clone()
        .map(|(url, secret)| Arc::new(webhook::Webhook::new(url, secret, api.clone())));
    let sender = Arc::new(send::TelegramSender::new(bot, api.clone()));
    let health = Health::new(ChannelState::Starting);
    let handle = ChannelHandle::new("telegram", sender.clone())
        .with_typing(sender.clone())
        .with_audio(sender.clone())
        .with_buttons(sender.clone())
        .with_files(sender.clone())
        .with_edits(sender.clone())
        .with_drafts(sender.clone())
        .with_voice_notes(sender.clone())
        .with_file_fetcher(sender)
        .with_health(health.clone());
    Ok((
        handle,
        Poller {
            api,
            settings,
            health,
            webhook,
            hello: tokio::sync::OnceCell::new(),
        },
    ))
}

/// Receives updates: by long polling, or in webhook mode by registering the webhook.
pub struct Poller {
    api: api::Api,
    settings: TelegramSettings,
    health: Health,
    webhook: Option<Arc<webhook::Webhook>>,
    /// The bot's identity once `getMe` answered (`None`: the token was rejected, or shutdown).
    hello: tokio::sync::OnceCell<Option<BotInfo>>,
}

impl Poller {
    /// Starts identifying the bot (getMe, clearing a webhook left from webhook mode, the command
    /// menu) in the background, so those round trips to Telegram overlap the rest of the
    /// gateway's start-up (opening the store, resuming work) instead of following it.
    /// [`Poller::run`] and [`Poller::standby`] use its answer.
    pub fn introduce(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            me.hello(&shutdown).await;
        });
    }

    /// Identifies the bot (getMe), clears any webhook, registers the command menu, then polls
    /// into `sink` until `shutdown`. Only a rejected token stops the channel (with the fix named
    /// in the log and in `gateway status`); any other failure is retried with backoff.
    pub async fn run(&self, sink: Arc<dyn InboundSink>, shutdown: CancellationToken) {
        let Some(info) = self.hello(&shutdown).await else {
            return;
        };
        if let Some(hook) = &self.webhook {
            if !self.register(hook, &shutdown).await {
                return;
            }
            hook.ready(info, sink);
            self.health.connected();
            shutdown.cancelled().await;
            return;
        }
        self.health.connected();
        poll::run(
            self.api.clone(),
            info,
            sink,
            self.settings.poll_timeout,
            self.health.clone(),
            shutdown,
        )
        .await;
    }

    /// For a gateway that sends but does not poll (another gateway on the same database holds
    /// the polling, which Telegram allows only one of): identifies the bot, so the channel shows
    /// as connected and a rejected token is still reported.
    pub async fn standby(&self, shutdown: &CancellationToken) {
        if self.hello(shutdown).await.is_some() {
            self.health.connected();
        }
    }

    /// The receiving end of webhook mode, for the gateway's HTTP route.
    pub fn webhook(&self) -> Option<Arc<Webhook>> {
        self.webhook.clone()
    }

    /// `setWebhook` with the secret, retried until Telegram takes it; false if shutting down.
    async fn register(&self, hook: &Webhook, shutdown: &CancellationToken) -> bool {
        let Ok(url) = reqwest::Url::parse(&hook.url) else {
            let why = format!(
                "`{}` is not a URL (channels.telegram.webhook.url)",
                hook.url
            );
            tracing::error!("telegram: {why}");
            self.health.stopped(why);
            return false;
        };
        let request = SetWebhook::new(url)
            .secret_token(hook.secret().to_string())
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let mut wait = Duration::from_millis(500);
        loop {
            match self.api.call(&request).await {
                Ok(_) => {
                    tracing::info!(url = %hook.url, "telegram: receiving updates by webhook");
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?wait, "telegram: setWebhook failed; retrying");
                    self.health.retrying(format!("setWebhook: {e}"));
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    /// The bot's identity: asked once (or joined while [`Poller::introduce`] asks).
    async fn hello(&self, shutdown: &CancellationToken) -> Option<BotInfo> {
        self.hello
            .get_or_init(|| self.identify(shutdown))
            .await
            .clone()
    }

    /// getMe (retried until it answers), with deleteWebhook beside it when polling: a webhook
    /// left from webhook mode would make getUpdates fail, and the two are independent, so the
    /// first poll waits one round trip to Telegram instead of two (and a reply soon after start
    /// is sent on the second connection the pair opens, while it is kept alive). A deleteWebhook
    /// that failed is tried once more after getMe got through.
    async fn identify(&self, shutdown: &CancellationToken) -> Option<BotInfo> {
        let delete = async {
            match self.webhook {
                None => Some(self.api.call(&DeleteWebhook::new()).await),
                Some(_) => None,
            }
        };
        let (info, deleted) = tokio::join!(self.get_me(shutdown), delete);
        let info = info?;
        if let Some(Err(_)) = deleted
            && let Err(e) = self.api.call(&DeleteWebhook::new()).await
        {
            tracing::warn!(error = %e, "telegram: deleteWebhook failed; polling may conflict with a webhook");
        }
        let commands: Vec<BotCommand> = switchboard_channel::COMMANDS
            .iter()
            .map(|c| match c.arg {
                Some(arg) => BotCommand::new(c.name, format!("{} ({arg})", c.description)),
                None => BotCommand::new(c.name, c.description),
            })
            .collect();
        // The command menu does not gate polling: registering it beside the first poll saves a
        // round trip on every start.
        let api = self.api.clone();
        tokio::spawn(async move {
            if let Err(e) = api.call(&SetMyCommands::new(commands)).await {
                tracing::warn!(error = %e, "telegram: setMyCommands failed; the command menu stays as it was");
            }
        });
        Some(info)
    }

    /// getMe, retried with backoff; `None` if the token is rejected or the gateway stops.
    async fn get_me(&self, shutdown: &CancellationToken) -> Option<BotInfo> {
        let mut wait = Duration::from_millis(500);
        let me = loop {
            match self.api.call(&GetMe::new()).await {
                Ok(me) => break me,
                Err(e) if e.is_invalid_token() => {
                    let why = TelegramError::Token(e.to_string()).to_string();
                    tracing::error!("{why}");
                    self.health.stopped(why);
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?wait, "telegram: getMe failed; retrying");
                    self.health.retrying(format!("getMe: {e}"));
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        };
        let info = BotInfo {
            id: me.user.id.0,
            username: me.user.username.clone().unwrap_or_default(),
        };
        tracing::info!(bot = %info.username, "telegram connected");
        Some(info)
    }
}

/// The conversion of one raw update (Bot API JSON) as the poller does it, for a bot with id 999
/// and username `jarvis_bot`: for the fuzz target, which must reach it from outside the crate.
#[doc(hidden)]
pub fn inbound_from_json(json: &[u8]) -> Option<switchboard_channel::Inbound> {
    let update: teloxide::types::Update = serde_json::from_slice(json).ok()?;
    let me = BotInfo {
        id: 999,
        username: "jarvis_bot".into(),
    };
    convert::inbound(&update, &me)
}

fn reqwest_url(s: &str) -> Result<reqwest::Url, TelegramError> {
    reqwest::Url::parse(s).map_err(|_| TelegramError::ApiUrl(s.to_string()))
}
