//! Long polling. The offset given to `getUpdates` (which tells Telegram to forget earlier updates)
//! moves past an update only after the core has stored it, so a crash never loses a message.
//! A poll that hangs past its timeout is abandoned and restarted; a `409 Conflict` (another process
//! polls the same token) is reported and retried slowly, never in a hot loop.

use crate::BotInfo;
use crate::send::describe;
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::InboundSink;
use teloxide::prelude::*;
use teloxide::types::AllowedUpdate;
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONFLICT_WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    bot: Bot,
    me: BotInfo,
    sink: Arc<dyn InboundSink>,
    poll_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut offset: i32 = 0;
    let mut failures: u32 = 0;
    loop {
        let request = bot
            .get_updates()
            .offset(offset)
            .timeout(poll_timeout.as_secs() as u32)
            .allowed_updates(vec![AllowedUpdate::Message]);
        // Telegram answers within `poll_timeout`; a poll far past it is stalled.
        let stall_after = poll_timeout + Duration::from_secs(15);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(stall_after, request.send()) => r,
        };
        let wait = match result {
            Err(_) => {
                tracing::warn!("telegram: long poll stalled; restarting it");
                failures += 1;
                Duration::ZERO
            }
            Ok(Ok(updates)) => {
                failures = 0;
                // The whole page is stored in one go, then acknowledged.
                let next = updates
                    .iter()
                    .map(|u| (u.id.0 as i32).saturating_add(1))
                    .max();
                let page: Vec<_> = updates
                    .iter()
                    .filter_map(|u| crate::convert::inbound(u, &me))
                    .collect();
                if !page.is_empty() && !store(&*sink, page, &shutdown).await {
                    return; // shutting down; the updates are redelivered next time
                }
                if let Some(next) = next {
                    offset = offset.max(next);
                }
                Duration::ZERO
            }
            Ok(Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates))) => {
                tracing::error!(
                    "telegram: another process is polling this bot token (409 Conflict). Stop the other gateway or bot using it; retrying in {}s",
                    CONFLICT_WAIT.as_secs()
                );
                CONFLICT_WAIT
            }
            Ok(Err(RequestError::Api(ApiError::InvalidToken))) => {
                tracing::error!(
                    "telegram: the bot token was rejected; fix channels.telegram.token and restart"
                );
                MAX_BACKOFF
            }
            Ok(Err(RequestError::RetryAfter(s))) => Duration::from_secs(s.seconds().into()),
            Ok(Err(e)) => {
                failures += 1;
                let wait = Duration::from_millis(500 * 2u64.pow(failures.min(6))).min(MAX_BACKOFF);
                tracing::warn!(error = %describe(&e), ?wait, "telegram: getUpdates failed");
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
