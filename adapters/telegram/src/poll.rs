//! Long polling. The offset given to `getUpdates` (which tells Telegram to forget earlier updates)
//! moves past an update only after the core has stored it, so a crash never loses a message.
//! A poll that hangs past its timeout is abandoned and restarted; a `409 Conflict` (another process
//! polls the same token) is reported and retried slowly, never in a hot loop.

use crate::BotInfo;
use crate::api::{Api, CallError};
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::{Health, InboundSink};
use teloxide::payloads::{
    AnswerCallbackQuery, AnswerCallbackQuerySetters, GetUpdates, GetUpdatesSetters,
};
use teloxide::types::{AllowedUpdate, CallbackQueryId};
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONFLICT_WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    api: Api,
    me: BotInfo,
    sink: Arc<dyn InboundSink>,
    poll_timeout: Duration,
    health: Health,
    shutdown: CancellationToken,
) {
    let mut offset: i32 = 0;
    let mut failures: u32 = 0;
    loop {
        let request = GetUpdates::new()
            .offset(offset)
            .timeout(poll_timeout.as_secs() as u32)
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        // Telegram answers within `poll_timeout`; a poll far past it is stalled.
        let stall_after = poll_timeout + Duration::from_secs(15);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(stall_after, api.call(&request)) => r,
        };
        let wait = match result {
            Err(_) => {
                tracing::warn!("telegram: long poll stalled; restarting it");
                failures += 1;
                Duration::ZERO
            }
            Ok(Ok(updates)) => {
                if failures > 0 {
                    health.connected();
                }
                failures = 0;
                // The whole page is stored in one go, then acknowledged.
                let next = updates
                    .iter()
                    .map(|u| (u.id.0 as i32).saturating_add(1))
                    .max();
                let page: Vec<_> = updates
                    .iter()
                    .filter_map(|u| {
                        let group = crate::convert::media_group(u).map(str::to_string);
                        crate::convert::inbound(u, &me).map(|m| (group, m))
                    })
                    .collect();
                let page = crate::convert::merge_albums(page);
                // Button presses are answered beside the poll, so a slow decision never holds it.
                for (press, query) in updates.iter().filter_map(crate::convert::press) {
                    answer_press(&api, &sink, press, query);
                }
                if !page.is_empty() && !store(&*sink, page, &shutdown).await {
                    return; // shutting down; the updates are redelivered next time
                }
                if let Some(next) = next {
                    offset = offset.max(next);
                }
                Duration::ZERO
            }
            Ok(Err(CallError::Request(RequestError::Api(
                ApiError::TerminatedByOtherGetUpdates,
            )))) => {
                let why = "another process is polling this bot token (409 Conflict); stop the other gateway or bot using it";
                tracing::error!("telegram: {why}; retrying in {}s", CONFLICT_WAIT.as_secs());
                health.needs_person(why);
                failures += 1;
                CONFLICT_WAIT
            }
            Ok(Err(e)) if e.is_invalid_token() => {
                let why = "the bot token was rejected; fix channels.telegram.token and restart";
                tracing::error!("telegram: {why}");
                health.needs_person(why);
                failures += 1;
                MAX_BACKOFF
            }
            Ok(Err(CallError::Request(RequestError::RetryAfter(s)))) => {
                Duration::from_secs(s.seconds().into())
            }
            Ok(Err(e)) => {
                failures += 1;
                let wait = backoff(failures);
                tracing::warn!(error = %e, ?wait, "telegram: getUpdates failed");
                health.retrying(format!("getUpdates: {e}"));
                wait
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Hands a button press to the core and answers its callback query beside the caller, so a
/// slow decision never holds the poll (or the webhook's answer).
pub(crate) fn answer_press(
    api: &Api,
    sink: &Arc<dyn InboundSink>,
    press: switchboard_channel::Press,
    query: String,
) {
    let (sink, api) = (sink.clone(), api.clone());
    tokio::spawn(async move {
        let notice = sink.pressed(press).await;
        let mut answer = AnswerCallbackQuery::new(CallbackQueryId(query));
        if let Some(n) = notice {
            answer = answer.text(n);
        }
        if let Err(e) = api.call(&answer).await {
            tracing::debug!(error = %e, "telegram: answerCallbackQuery failed");
        }
    });
}

/// 0.5 s, 1 s, 2 s … capped, with jitter.
fn backoff(failures: u32) -> Duration {
    switchboard_channel::retry_delay(failures, Duration::from_millis(500), MAX_BACKOFF)
}

/// Hands a page of messages to the core, retrying until they are stored (duplicates are
/// ignored, so a retry after a partial failure is safe). False if shutting down first.
async fn store(
    sink: &dyn InboundSink,
    page: Vec<switchboard_channel::Inbound>,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        match sink.accept_batch(page.clone()).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::error!(error = %e, "telegram: cannot store a message; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
