//! Delivering the outbox: every stored outbound message is sent, in order per chat, until it is
//! delivered or refused for good.
//!
//! A message is split at the channel's limit (a file goes last, with the text as its caption when
//! it fits); after each part is accepted the count of delivered
//! parts is stored, so a crash or a retry resumes with the next part and never re-sends one. A
//! retryable failure waits (the platform's `retry_after` when given, else exponential backoff with
//! jitter, capped) and tries again; later messages to the same chat wait behind it, so order holds.
//! The backoff (`switchboard_channel::retry_delay`, shared with the adapters) is ours rather than a
//! crate's because it must honour the platform's own wait and stop at shutdown.

pub mod preview;

use crate::channels::Channels;
use crate::lanes::Lanes;
use crate::store::{OutboxId, OutboxRow, OutboxStatus, Store};
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::{ChannelError, OutFile, Outbound, Target, split_message};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(300);
const MAX_IN_FLIGHT: usize = 16;

/// Cheap to clone (one reference count): every queued send holds a copy, and copying the
/// channel map and the shutdown token per message showed in a burst's profile.
#[derive(Clone)]
pub struct Delivery(Arc<Inner>);

struct Inner {
    store: Store,
    channels: Channels,
    lanes: Lanes<String>,
    /// Sends in flight at once, across all chats: platforms limit bursts anyway (Telegram about
    /// 30 messages a second), and each in-flight send holds a connection and its buffers.
    sending: Semaphore,
    shutdown: CancellationToken,
}

impl Delivery {
    pub fn new(store: Store, channels: Channels, shutdown: CancellationToken) -> Self {
        Self(Arc::new(Inner {
            store,
            channels,
            lanes: Lanes::new(),
            sending: Semaphore::new(MAX_IN_FLIGHT),
            shutdown,
        }))
    }

    /// Queues stored message `id` for delivery behind earlier ones to `target`.
    pub fn push(&self, id: OutboxId, target: &str) {
        self.queue(id, target, None);
    }

    /// [`Delivery::push`] for a message just stored as `row`: its first attempt needs no read.
    pub fn push_row(&self, row: OutboxRow) {
        let (id, target) = (row.id, row.target.clone());
        self.queue(id, &target, Some(row));
    }

    fn queue(&self, id: OutboxId, target: &str, row: Option<OutboxRow>) {
        let this = self.clone();
        let span = tracing::info_span!("deliver", outbox = id, target = %target);
        self.0.lanes.push(
            target.to_string(),
            tracing::Instrument::instrument(async move { this.deliver(id, row).await }, span),
        );
    }

    /// Queues everything still undelivered (at start-up).
    pub async fn resume(&self) -> crate::store::Result<usize> {
        let rows = self.0.store.outbox_pending().await?;
        for r in &rows {
            self.push(r.id, &r.target);
        }
        Ok(rows.len())
    }

    pub async fn drain(&self) {
        self.0.lanes.drain().await;
    }

    /// Delivers stored message `id`; `stored`: the row as just stored, for the first attempt
    /// (only delivery changes a stored message, and this lane is its only deliverer).
    async fn deliver(&self, id: OutboxId, mut stored: Option<OutboxRow>) {
        loop {
            if self.0.shutdown.is_cancelled() {
                return; // still pending in the database; resumed at next start
            }
            let read = match stored.take() {
                Some(row) => Ok(Some(row)),
                None => self.0.store.outbox_get(id).await,
            };
            let row = match read {
                Ok(Some(r)) if r.status == OutboxStatus::Pending => r,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read outbox");
                    return;
                }
            };
            let Some(channel) = self.0.channels.for_target(&row.target) else {
                let err = format!("channel for `{}` is not enabled", row.target);
                tracing::warn!(target = %row.target, "{err}");
                self.record(id, &err, true).await;
                return;
            };
            let target = match row.target.split_once(':') {
                Some((ch, chat)) => Target::new(ch, chat),
                None => {
                    self.record(id, "malformed target", true).await;
                    return;
                }
            };
            let files = channel.files();
            if row.file.is_some() && files.is_none() {
                self.record(
                    id,
                    &format!("the {} channel cannot post files", target.channel),
                    true,
                )
                .await;
                return;
            }
            // With a file, the text is its caption when it fits; else the text goes first.
            let caption = match (&row.file, files) {
                (Some(_), Some(f)) if row.text.chars().count() <= f.max_caption_len() => {
                    Some(row.text.clone())
                }
                (Some(_), Some(_)) => Some(String::new()),
                _ => None,
            };
            let parts = match &caption {
                Some(c) if !c.is_empty() || row.text.trim().is_empty() => Vec::new(),
                _ => split_message(&row.text, channel.sender().max_len()),
            };
            let texts = parts.len();
            let with_file = usize::from(row.file.is_some());
            // A streamed preview's messages: the text parts replace them in place; those left
            // over (the preview was longer) are deleted, so nothing half-written stays.
            let edits = channel.edits();
            let stale: &[String] = match edits {
                Some(_) => row.edits.get(texts..).unwrap_or_default(),
                None => &[],
            };
            let total = texts + with_file + stale.len();
            if total == 0 {
                // Nothing visible to send (an empty reply): done.
                let _ = self.0.store.outbox_progress(id, 0, true).await;
                return;
            }
            let mut failure: Option<ChannelError> = None;
            let mut parts = parts.into_iter();
            for i in 0..total {
                let text = if i < texts {
                    parts.next().unwrap_or_default()
                } else {
                    caption.clone().unwrap_or_default()
                };
                if i < row.parts_sent {
                    continue;
                }
                let out = Outbound {
                    target: target.clone(),
                    thread: row.thread.clone(),
                    // Only the first part is shown as a reply to the user's message.
                    reply_to: if i == 0 { row.reply_to.clone() } else { None },
                    text,
                };
                let _slot = self.0.sending.acquire().await;
                let sent = if i < texts {
                    match (edits, row.edits.get(i)) {
                        (Some(e), Some(preview)) => match e.edit(&target, preview, &out.text).await
                        {
                            // The preview is gone (deleted by a person): post the part anew.
                            Err(ChannelError::Rejected(why)) => {
                                tracing::debug!(%why, "cannot edit the preview; posting instead");
                                channel.sender().send(&out).await.map(|_| ())
                            }
                            other => other,
                        },
                        _ => channel.sender().send(&out).await.map(|_| ()),
                    }
                } else if i < texts + with_file {
                    self.send_file(&row, channel, &out).await
                } else {
                    let preview = &stale[i - texts - with_file];
                    match edits.map(|e| e.delete(&target, preview)) {
                        Some(f) => match f.await {
                            Err(e) if !e.is_retryable() => {
                                tracing::debug!(error = %e, "cannot delete a stale preview");
                                Ok(())
                            }
                            other => other,
                        },
                        None => Ok(()),
                    }
                };
                match sent {
                    Ok(()) => {
                        if let Err(e) = self
                            .0
                            .store
                            .outbox_progress(id, i + 1, i + 1 == total)
                            .await
                        {
                            tracing::error!(error = %e, "cannot record delivery");
                            return;
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let Some(err) = failure else {
                tracing::debug!(target = %row.target, parts = total, "delivered");
                remove_copy(&row);
                return;
            };
            if !err.is_retryable() {
                tracing::warn!(target = %row.target, error = %err, "delivery refused; giving up");
                self.record(id, &err.to_string(), true).await;
                remove_copy(&row);
                return;
            }
            self.record(id, &err.to_string(), false).await;
            let wait = err
                .retry_after()
                .unwrap_or_else(|| backoff(row.attempts + 1));
            tracing::warn!(target = %row.target, error = %err, ?wait, "delivery failed; will retry");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.0.shutdown.cancelled() => return,
            }
        }
    }

    /// Posts the row's file (its stored copy) with `out.text` as the caption; a voice note as
    /// one where the channel has them.
    async fn send_file(
        &self,
        row: &crate::store::OutboxRow,
        channel: &switchboard_channel::ChannelHandle,
        out: &Outbound,
    ) -> Result<(), ChannelError> {
        let Some(f) = &row.file else {
            return Ok(());
        };
        let bytes = tokio::fs::read(&f.path).await.map_err(|e| {
            ChannelError::Rejected(format!("the file to send ({}) cannot be read: {e}", f.name))
        })?;
        if let (Some(v), Some(notes)) = (&f.voice, channel.voice_notes()) {
            let note = switchboard_channel::VoiceNote {
                ogg: bytes,
                duration_secs: v.duration_secs,
                waveform: v.waveform.clone(),
            };
            return notes.send_voice(out, &note).await.map(|_| ());
        }
        let Some(files) = channel.files() else {
            return Err(ChannelError::Rejected(format!(
                "the {} channel cannot post files",
                out.target.channel
            )));
        };
        let file = OutFile {
            name: f.name.clone(),
            mime: f.mime.clone(),
            bytes,
        };
        files.send_file(out, &file).await.map(|_| ())
    }

    async fn record(&self, id: OutboxId, error: &str, permanent: bool) {
        if let Err(e) = self
            .0
            .store
            .outbox_failed_attempt(id, error, permanent)
            .await
        {
            tracing::error!(error = %e, "cannot record delivery failure");
        }
    }
}

/// The copy of a posted file is kept only until its message is delivered or refused.
fn remove_copy(row: &crate::store::OutboxRow) {
    if let Some(f) = &row.file
        && let Err(e) = std::fs::remove_file(&f.path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %f.path, "cannot remove a sent file's copy");
    }
}

/// 0.5 s, 1 s, 2 s … capped at five minutes, with up to 25 % jitter so many chats retrying after
/// one outage do not all fire at once. A single 5xx or dropped connection is usually over in
/// well under a second; a longer outage backs off quickly all the same.
fn backoff(attempt: u32) -> Duration {
    switchboard_channel::retry_delay(attempt, Duration::from_millis(500), MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= Duration::from_millis(500));
        assert!(backoff(1) < Duration::from_millis(700));
        assert!(backoff(3) >= Duration::from_secs(2));
        assert!(backoff(30) <= MAX_BACKOFF.mul_f64(1.25));
    }
}
