//! Webhook mode: Telegram posts each update to the gateway's HTTP server instead of being
//! polled. The gateway's route hands the raw request here; the update is converted and stored
//! before the answer, so Telegram (which retries anything but a 2xx) never loses one: a 200 is
//! the acknowledgement, as the offset is in polling mode.

use crate::BotInfo;
use crate::api::Api;
use std::sync::{Arc, OnceLock};
use switchboard_channel::InboundSink;

/// The header Telegram sends the webhook's `secret_token` in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// How one pushed update went, for the HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (or nothing to store): answer 200.
    Stored,
    /// Missing or wrong secret: answer 401, nothing done.
    Unauthorized,
    /// Not an update we can read: answer 200 all the same (a retry would not change it).
    Malformed,
    /// The bot is not identified yet, or the core could not store it: answer 503, Telegram
    /// sends it again.
    Unavailable,
}

/// The receiving end of the webhook, shared by the poller (which registers it and fills in the
/// bot and the sink) and the gateway's route.
pub struct Webhook {
    pub(crate) url: String,
    secret: String,
    api: Api,
    ready: OnceLock<(BotInfo, Arc<dyn InboundSink>)>,
}

impl Webhook {
    pub(crate) fn new(url: String, secret: String, api: Api) -> Self {
        Self {
            url,
            secret,
            api,
            ready: OnceLock::new(),
        }
    }

    pub(crate) fn ready(&self, me: BotInfo, sink: Arc<dyn InboundSink>) {
        let _ = self.ready.set((me, sink));
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// Handles one POST: `secret` is the request's [`SECRET_HEADER`], `body` its JSON.
    pub async fn receive(&self, secret: Option<&[u8]>, body: &[u8]) -> Outcome {
        let given = secret.unwrap_or_default();
        if !switchboard_channel::constant_time_eq(given, self.secret.as_bytes()) {
            tracing::warn!(
                "telegram webhook: a request with a missing or wrong secret was refused"
            );
            return Outcome::Unauthorized;
        }
        let Some((me, sink)) = self.ready.get() else {
            return Outcome::Unavailable;
        };
        let update: teloxide::types::Update = match serde_json::from_slice(body) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "telegram webhook: an update that is not Bot API JSON was dropped");
                return Outcome::Malformed;
            }
        };
        if let Some((press, query)) = crate::convert::press(&update) {
            crate::poll::answer_press(&self.api, sink, press, query);
        }
        let Some(inbound) = crate::convert::inbound(&update, me) else {
            return Outcome::Stored;
        };
        match sink.accept_batch(vec![inbound]).await {
            Ok(()) => Outcome::Stored,
            Err(e) => {
                tracing::error!(error = %e, "telegram webhook: cannot store an update; Telegram will send it again");
                Outcome::Unavailable
            }
        }
    }
}
