//! The gateway connection (serenity): events in, reconnects with backoff, fatal close codes
//! reported with the fix, and messages missed during a gap fetched over REST.

use crate::DiscordSettings;
use crate::rest::{Rest, next_session};
use serenity::all::{
    Context, EventHandler, GatewayIntents, Interaction, Message, Ready, ResumedEvent,
};
use serenity::gateway::GatewayError;
use serenity::http::{HttpBuilder, HttpError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard_channel::{Health, Inbound, InboundSink};
use tokio_util::sync::CancellationToken;

pub struct Runner {
    settings: DiscordSettings,
    rest: Arc<Rest>,
    health: Health,
}

struct Handler {
    sink: Arc<dyn InboundSink>,
    rest: Arc<Rest>,
    me: Arc<AtomicU64>,
    health: Health,
    guilds: Vec<String>,
    /// Slash commands are registered once per process (on the first READY).
    registered: Arc<std::sync::atomic::AtomicBool>,
}

impl Runner {
    pub(crate) fn new(settings: DiscordSettings, rest: Arc<Rest>, health: Health) -> Runner {
        Runner {
            settings,
            rest,
            health,
        }
    }

    fn stop(&self, why: &str) {
        tracing::error!("discord: {why}");
        self.health.stopped(why);
    }

    /// Connects and handles events until `shutdown`. Ordinary disconnects are resumed by
    /// serenity; if the client itself stops, it is restarted with backoff and jitter. A rejected
    /// token or intents stop the channel with a message naming the fix.
    pub async fn run(self, sink: Arc<dyn InboundSink>, shutdown: CancellationToken) {
        // serenity appends `/api/v10/...` to its proxy base.
        let base = self.settings.api_url.trim_end_matches('/');
        let base = base.strip_suffix("/api").unwrap_or(base).to_string();
        let intents = GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        let registered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let me = Arc::new(AtomicU64::new(0));
        let mut wait = Duration::from_secs(1);
        loop {
            let http = HttpBuilder::new(&self.settings.token)
                .proxy(base.clone())
                .ratelimiter_disabled(true)
                .build();
            let handler = Handler {
                sink: sink.clone(),
                rest: self.rest.clone(),
                me: me.clone(),
                health: self.health.clone(),
                guilds: self.settings.guilds.clone(),
                registered: registered.clone(),
            };
            let client = serenity::client::ClientBuilder::new_with_http(http, intents)
                .event_handler(handler);
            let mut client = match client.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "discord: cannot build the client; retrying");
                    self.health.retrying(e.to_string());
                    if sleep_or_stop(&shutdown, &mut wait).await {
                        return;
                    }
                    continue;
                }
            };
            let manager = client.shard_manager.clone();
            let result = tokio::select! {
                r = async {
                    match &self.settings.shards {
                        Some((range, total)) => client.start_shard_range(range.clone(), *total).await,
                        None => client.start().await,
                    }
                } => r,
                _ = shutdown.cancelled() => {
                    manager.shutdown_all().await;
                    return;
                }
            };
            match result {
                Err(serenity::Error::Gateway(GatewayError::InvalidAuthentication)) => {
                    return self.stop(
                        "the bot token was rejected (close code 4004); fix channels.discord.token and restart",
                    );
                }
                Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(r)))
                    if r.status_code.as_u16() == 401 =>
                {
                    return self.stop(
                        "the bot token was rejected (401 from the REST API); fix channels.discord.token and restart",
                    );
                }
                Err(serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents)) => {
                    return self.stop(
                        "the gateway refused our intents (close code 4014): enable the Message Content intent for this bot in the Discord developer portal (Bot → Privileged Gateway Intents), then restart",
                    );
                }
                Err(serenity::Error::Gateway(GatewayError::InvalidGatewayIntents)) => {
                    return self.stop(
                        "invalid gateway intents (close code 4013); this is a bug, please report it",
                    );
                }
                // Anything else (a 5xx from /gateway/bot, a dropped connection, a close code
                // that is not fatal) is retried: only the owner can fix the cases above.
                Err(e) => {
                    tracing::warn!(error = %e, ?wait, "discord: the gateway client stopped; reconnecting");
                    self.health.retrying(e.to_string());
                }
                Ok(()) => {
                    tracing::warn!(?wait, "discord: the gateway client ended; reconnecting");
                    self.health.retrying("the gateway connection ended");
                }
            }
            if sleep_or_stop(&shutdown, &mut wait).await {
                return;
            }
        }
    }
}

/// Sleeps `wait` with up to 25 % jitter (doubling it, capped at a minute); true if stopping.
async fn sleep_or_stop(shutdown: &CancellationToken, wait: &mut Duration) -> bool {
    let this = switchboard_channel::jittered(*wait);
    *wait = (*wait * 2).min(Duration::from_secs(60));
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(this) => false,
    }
}

impl Handler {
    /// A slash command: acknowledged at once (Discord allows 3 s; the answer may take longer),
    /// then handled as the chat command it stands for. The answer replaces the "thinking…"
    /// placeholder (see `Rest::send`); a refused sender is told so there.
    async fn slash_command(&self, c: serenity::all::CommandInteraction) {
        if let Err(e) = self
            .rest
            .interaction_callback(c.id.get(), &c.token, serde_json::json!({ "type": 5 }))
            .await
        {
            tracing::warn!(error = %e, "discord: cannot acknowledge a slash command");
            return;
        }
        let m = crate::convert::slash_command(&c);
        self.rest
            .remember_interaction(&m.message_id, c.application_id.get(), &c.token);
        match self.sink.accept_command(m.clone()).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = self
                    .rest
                    .edit_original(&m.message_id, "Sorry, you are not allowed to use me here.")
                    .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "discord: cannot store a slash command");
                let _ = self
                    .rest
                    .edit_original(
                        &m.message_id,
                        "⚠️ I could not take that command; please try again.",
                    )
                    .await;
            }
        }
    }

    async fn deliver(&self, m: Inbound) {
        for attempt in 0..30u32 {
            match self.sink.accept(m.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, attempt, "discord: cannot store a message; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// After a fresh session (not a resume), fetch what was posted during the gap.
    async fn catch_up(&self) {
        let me = self.me.load(Ordering::SeqCst);
        for (channel, after) in self.rest.seen_channels() {
            match self.rest.history_after(channel, after).await {
                Ok(msgs) => {
                    for msg in msgs {
                        self.rest.saw(channel, msg.id.get());
                        if let Some(m) = crate::convert::inbound(&msg, me) {
                            tracing::info!(
                                channel,
                                "discord: recovered a message posted during a gap"
                            );
                            self.deliver(m).await;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(channel, error = %e, "discord: cannot fetch messages missed during a gap")
                }
            }
        }
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        self.me.store(ready.user.id.get(), Ordering::SeqCst);
        if !self.registered.swap(true, Ordering::SeqCst) {
            let (rest, guilds, app) = (
                self.rest.clone(),
                self.guilds.clone(),
                ready.application.id.get(),
            );
            tokio::spawn(async move {
                if let Err(e) = rest.register_commands(app, &guilds).await {
                    tracing::warn!(error = %e, "discord: cannot register slash commands");
                }
            });
        }
        self.health.connected();
        let n = next_session(&self.rest);
        tracing::info!(bot = %ready.user.name, session = n, "discord connected");
        if n > 1 {
            self.catch_up().await;
        }
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!("discord: session resumed");
        self.health.connected();
    }

    /// Button presses: the core decides, and the interaction is answered within Discord's three
    /// seconds either way (an ephemeral notice for the presser, or a silent acknowledgement).
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let i = match interaction {
            Interaction::Component(i) => i,
            Interaction::Command(c) => return self.slash_command(c).await,
            _ => return,
        };
        let press = crate::convert::press(&i);
        let notice = self.sink.pressed(press).await;
        if let Err(e) = self
            .rest
            .answer_interaction(i.id.get(), &i.token, notice.as_deref())
            .await
        {
            tracing::warn!(error = %e, "discord: cannot answer a button press");
        }
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        self.rest.saw(msg.channel_id.get(), msg.id.get());
        let me = self.me.load(Ordering::SeqCst);
        if let Some(m) = crate::convert::inbound(&msg, me) {
            self.deliver(m).await;
        }
    }
}
