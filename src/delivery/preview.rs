//! Live previews of a reply being written: a Telegram draft in private chats, else messages
//! posted and edited in place.
//!
//! A preview only shows; the reply itself is still stored and delivered by the outbox, which
//! replaces the preview's messages with the final parts (see `Delivery::deliver`). The messages a
//! preview posts are recorded in the store as they are posted, so a re-run after a crash
//! mid-stream keeps editing them, and the final reply replaces them: never left half-written,
//! never duplicated.
//!
//! Pacing: the first text is shown [`FIRST_AFTER`] after it arrives (a reply complete by then
//! needs no preview: it is simply sent), then at most one update per [`EVERY`], only when the
//! text changed. A rate limit waits as long as the platform asks; the final text never depends
//! on a preview update getting through.

use crate::store::{InboxId, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use switchboard_channel::{ChannelError, ChannelHandle, Outbound, Target, split_message};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long after its first text a reply is first shown.
pub const FIRST_AFTER: Duration = Duration::from_millis(30);
/// At most one update per chat this often (within Telegram's and Discord's edit limits).
pub const EVERY: Duration = Duration::from_secs(1);
/// The longest rate-limit wait honoured while previewing (the final reply waits as asked).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Starts previews; one per gateway.
#[derive(Clone)]
pub struct Previews {
    store: Store,
    /// Set when the platform refused a draft (an old Bot API server, a bot without the
    /// feature): edits in place from then on.
    drafts_refused: Arc<AtomicBool>,
    /// Updates shown, for the benchmark's "edits per streamed reply".
    shown: Arc<std::sync::atomic::AtomicU64>,
}

/// Where a preview goes.
pub struct Place {
    pub target: Target,
    pub thread: Option<String>,
    /// The message answered (the first posted part replies to it).
    pub reply_to: Option<String>,
    pub is_direct: bool,
}

/// A running preview; [`Preview::finish`] ends it.
pub struct Preview {
    done: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Preview {
    /// Stops updating and waits for an update in flight, so that nothing the preview sends can
    /// land after the final reply.
    pub async fn finish(self) {
        self.done.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the preview task failed");
        }
    }
}

enum Mode {
    Draft,
    Edit,
}

impl Previews {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            drafts_refused: Arc::default(),
            shown: Arc::default(),
        }
    }

    /// Preview updates shown since start.
    pub fn updates_shown(&self) -> u64 {
        self.shown.load(Ordering::Relaxed)
    }

    /// Starts previewing the reply to `inbox` in `place`, from `text` (the reply as it would be
    /// now); `typing` is stopped once text is shown. `None` when the channel can show none.
    pub fn start(
        &self,
        channel: ChannelHandle,
        inbox: InboxId,
        place: Place,
        text: watch::Receiver<String>,
        typing: CancellationToken,
    ) -> Option<Preview> {
        if let Some(live) = channel.live() {
            // The channel takes every change itself; nothing to pace or record.
            let reply_to = place.reply_to.as_deref().unwrap_or_default();
            live.follow(&place.target, reply_to, text);
            return Some(Preview {
                done: CancellationToken::new(),
                task: tokio::spawn(async {}),
            });
        }
        let drafts = !self.drafts_refused.load(Ordering::Relaxed)
            && channel
                .drafts()
                .is_some_and(|d| d.drafts_in(&place.target, place.is_direct));
        if !drafts && channel.edits().is_none() {
            return None;
        }
        let done = CancellationToken::new();
        let run = Run {
            previews: self.clone(),
            channel,
            inbox,
            place,
            mode: if drafts { Mode::Draft } else { Mode::Edit },
            posted: Vec::new(),
            done: done.clone(),
        };
        let span = tracing::debug_span!("preview", inbox);
        let task = tokio::spawn(tracing::Instrument::instrument(run.run(text, typing), span));
        Some(Preview { done, task })
    }
}

struct Run {
    previews: Previews,
    channel: ChannelHandle,
    inbox: InboxId,
    place: Place,
    mode: Mode,
    /// Messages posted for the preview (edit mode): their id and the text they show.
    posted: Vec<(String, String)>,
    done: CancellationToken,
}

impl Run {
    async fn run(mut self, mut text: watch::Receiver<String>, typing: CancellationToken) {
        // Wait for the first text, then a moment more: a reply done by then needs no preview.
        loop {
            if !text.borrow_and_update().trim().is_empty() {
                break;
            }
            tokio::select! {
                biased;
                _ = self.done.cancelled() => return,
                changed = text.changed() => if changed.is_err() { return },
            }
        }
        if self.pause(FIRST_AFTER).await {
            return;
        }
        // Messages an earlier run of this turn posted (it crashed mid-stream) are edited again.
        // Read only now: a reply done before its first preview costs no query.
        match self.previews.store.previews(self.inbox).await {
            Ok(ids) => self.posted = ids.into_iter().map(|id| (id, String::new())).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read previews; not previewing this reply");
                return;
            }
        }
        loop {
            let now = text.borrow_and_update().clone();
            // Not raced against `done`: an update in flight completes (or fails) before the
            // final reply is stored, so it cannot overwrite it.
            let wait = match self.show(&now).await {
                Ok(()) => {
                    typing.cancel();
                    self.previews.shown.fetch_add(1, Ordering::Relaxed);
                    EVERY
                }
                Err(ChannelError::RateLimited { retry_after }) => {
                    tracing::debug!(?retry_after, "preview rate limited");
                    retry_after.clamp(EVERY, MAX_WAIT)
                }
                Err(e) if matches!(self.mode, Mode::Draft) && !e.is_retryable() => {
                    tracing::info!(error = %e, "drafts refused; editing messages in place instead");
                    self.previews.drafts_refused.store(true, Ordering::Relaxed);
                    self.mode = Mode::Edit;
                    if self.channel.edits().is_none() {
                        return;
                    }
                    continue;
                }
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "preview update failed; trying again later");
                    EVERY * 2
                }
                Err(e) => {
                    // The final reply is delivered (and retried) by the outbox all the same.
                    tracing::debug!(error = %e, "preview refused; not previewing this reply");
                    return;
                }
            };
            if self.pause(wait).await {
                return;
            }
            tokio::select! {
                biased;
                _ = self.done.cancelled() => return,
                changed = text.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Sleeps `d`; `true` when the preview ended meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.done.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }

    async fn show(&mut self, text: &str) -> Result<(), ChannelError> {
        let max = self.channel.sender().max_len();
        let parts = split_message(text, max);
        match self.mode {
            Mode::Draft => {
                let Some(drafts) = self.channel.drafts() else {
                    return Ok(());
                };
                // A draft is one message: the part being written now.
                let Some(last) = parts.last() else {
                    return Ok(());
                };
                drafts
                    .draft(
                        &self.place.target,
                        self.place.thread.as_deref(),
                        self.inbox,
                        last,
                    )
                    .await
            }
            Mode::Edit => {
                let Some(edits) = self.channel.edits() else {
                    return Ok(());
                };
                for (i, part) in parts.into_iter().enumerate() {
                    match self.posted.get_mut(i) {
                        Some((_, shown)) if *shown == part => {}
                        Some((id, shown)) => {
                            edits.edit(&self.place.target, id, &part).await?;
                            *shown = part;
                        }
                        None => {
                            let out = Outbound {
                                target: self.place.target.clone(),
                                thread: self.place.thread.clone(),
                                reply_to: if i == 0 {
                                    self.place.reply_to.clone()
                                } else {
                                    None
                                },
                                text: part.clone(),
                            };
                            let id = self.channel.sender().send(&out).await?;
                            if let Err(e) =
                                self.previews.store.preview_posted(self.inbox, i, &id).await
                            {
                                tracing::warn!(error = %e, "cannot record a preview message");
                            }
                            self.posted.push((id, part));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}
