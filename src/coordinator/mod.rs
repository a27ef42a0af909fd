//! The coordinator: the router between channels (sources and sinks) and agents.
//!
//! Inbound messages are stored in the inbox first ([`InboundSink::accept`]), then handled in a
//! lane per chat, so one chat's messages are answered strictly in order while chats proceed in
//! parallel. Each message gets exactly one reply, stored in the same transaction that marks the
//! message answered; the delivery loop then sends it. On start-up, whatever a previous run left
//! unanswered or undelivered is picked up again.

mod approvals;
mod commands;
mod host;
mod intake;
mod routing;
mod sharing;
mod spoken;
mod workers;

use crate::access::{Access, Decision};
use crate::agent::{AgentError, Agents};
use crate::channels::Channels;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::lanes::Lanes;
use crate::providers::Block;
use crate::store::{InboxId, NewOutbox, SessionId, SessionKind, Store, main_key};
use crate::tools::TurnContext;
pub use approvals::ApprovalAnswer;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_channel::{Inbound, InboundSink, SinkError, TYPING_RENEW_EVERY, Target};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
pub use workers::Workers;

/// Cheap to clone; every clone is the same coordinator.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    access: Access,
    voice: Option<Arc<crate::voice::Transcriber>>,
    /// When each chat was last told the speech model is missing (told at most once an hour).
    model_warned: parking_lot::Mutex<std::collections::HashMap<String, Instant>>,
    store: Store,
    agents: Agents,
    channels: Channels,
    delivery: Delivery,
    lanes: Lanes<String>,
    workers: Workers,
    shutdown: CancellationToken,
    started: Instant,
    clock: Arc<dyn crate::cron::clock::Clock>,
    approvals: approvals::Waiters,
    /// Chats told that the speech model is being fetched (once each per run).
    fetch_told: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// Chats told that their model cannot see images (once each per run).
    blind_told: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// Reads replies aloud (`voice.reply`, `tts`).
    speaker: Option<Arc<crate::tts::Speaker>>,
    /// Live previews of replies being written (`channels.*.streaming`).
    previews: crate::delivery::preview::Previews,
    /// The turn running in each lane, for `/stop`.
    running: parking_lot::Mutex<std::collections::HashMap<String, CancellationToken>>,
    oversight: Oversight,
    /// This gateway among others on a shared store (leases of chats and roles).
    cluster: crate::cluster::Cluster,
    /// On a shared store: the messages this gateway has taken on (see `sharing`).
    taken: sharing::Taken,
}

/// The owner's side of the gateway: the usage ledger (which the model router reports to, so it
/// exists before the coordinator), notices to the owner, and the clock both read.
#[derive(Clone)]
pub struct Oversight {
    pub clock: Arc<dyn crate::cron::clock::Clock>,
    pub notices: Arc<crate::notices::Notices>,
    pub ledger: Arc<crate::usage::Ledger>,
}

/// What start-up recovered from a previous run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovered {
    pub inbox: usize,
    pub outbox: usize,
    pub tasks_rerun: usize,
    pub tasks_interrupted: usize,
}

impl Coordinator {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        agents: Agents,
        channels: Channels,
        shutdown: CancellationToken,
        oversight: Oversight,
    ) -> Coordinator {
        let delivery = Delivery::new(store.clone(), channels.clone(), shutdown.clone());
        let workers = Workers::new(&config.workers);
        let cluster = crate::cluster::Cluster::new(store.clone());
        Coordinator {
            inner: Arc::new(Inner {
                voice: config.voice.enabled.then(|| {
                    let (path, named) = config.voice_model();
                    let t = crate::voice::Transcriber::new(
                        &path,
                        &config.voice.language,
                        config.voice.threads,
                    );
                    Arc::new(match named {
                        Some(model) => {
                            t.with_fetch(crate::voice::Fetch {
                                model,
                                base_url: config.voice.model_url.clone().unwrap_or_else(|| {
                                    crate::voice::models::DEFAULT_BASE_URL.into()
                                }),
                                sha256: config.voice.model_sha256.clone(),
                                dir: config.state_dir().join("models"),
                            })
                        }
                        None => t,
                    })
                }),
                model_warned: parking_lot::Mutex::default(),
                previews: crate::delivery::preview::Previews::new(store.clone()),
                speaker: crate::tts::Speaker::from_config(&config).map(Arc::new),
                access: Access::from_config(&config),
                config,
                store,
                agents,
                channels,
                delivery,
                lanes: Lanes::new(),
                workers,
                shutdown,
                started: Instant::now(),
                clock: oversight.clock.clone(),
                approvals: approvals::Waiters::default(),
                running: parking_lot::Mutex::default(),
                blind_told: parking_lot::Mutex::default(),
                fetch_told: parking_lot::Mutex::default(),
                oversight,
                cluster,
                taken: sharing::Taken::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn agents(&self) -> &Agents {
        &self.inner.agents
    }

    pub fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    /// The clock cron uses (the system's, or a test's).
    pub fn clock(&self) -> Arc<dyn crate::cron::clock::Clock> {
        self.inner.clock.clone()
    }

    pub fn ledger(&self) -> &Arc<crate::usage::Ledger> {
        &self.inner.oversight.ledger
    }

    pub fn notices(&self) -> &Arc<crate::notices::Notices> {
        &self.inner.oversight.notices
    }

    pub(crate) fn delivery(&self) -> &Delivery {
        &self.inner.delivery
    }

    /// Queues stored outbox message `id` for delivery.
    pub(crate) fn deliver(&self, id: crate::store::OutboxId, target: &str) {
        self.inner.delivery.push(id, target);
    }

    /// This gateway's place among the others on a shared store.
    pub fn cluster(&self) -> &crate::cluster::Cluster {
        &self.inner.cluster
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Picks up what a previous run left: unanswered messages, undelivered replies, tasks.
    pub async fn recover(&self) -> crate::store::Result<Recovered> {
        if self.inner.cluster.is_shared() {
            return self.recover_shared().await;
        }
        // Undelivered replies first: they answer older messages than anything recovery is
        // about to answer, and a chat's replies must go out in the order they were written.
        let mut r = Recovered {
            outbox: self.inner.delivery.resume().await?,
            ..Recovered::default()
        };
        for row in self.inner.store.inbox_pending().await? {
            self.inner.store.inbox_discard_partial(row.id).await?;
            self.dispatch(row.id, row.message).await;
            r.inbox += 1;
        }
        let me = self.clone();
        tokio::spawn(async move { me.settle_expired(None).await });
        let (rerun, interrupted) = workers::recover(self).await?;
        r.tasks_rerun = rerun;
        r.tasks_interrupted = interrupted;
        Ok(r)
    }

    /// Stores a message for a chat and queues it for delivery.
    pub async fn post(&self, m: &NewOutbox) -> crate::store::Result<bool> {
        match self.inner.store.outbox_enqueue(m).await? {
            Some(id) => {
                self.inner.delivery.push(id, &m.target);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Stops taking new work and waits (up to `grace`) for turns in progress to finish and be
    /// stored. Anything unfinished stays in the database and is resumed at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.workers.cancel_all_for_shutdown();
        let drained = async {
            self.inner.lanes.drain().await;
            self.inner.workers.drain().await;
            self.inner.delivery.drain().await;
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!(
                "shutdown grace period over; unfinished messages will be answered after restart"
            );
        }
        if let Err(e) = self.inner.store.flush().await {
            tracing::warn!(error = %e, "cannot store the last usage records");
        }
    }

    fn lane_key(m: &Inbound) -> String {
        format!("{}|{}", m.chat, m.thread.as_deref().unwrap_or(""))
    }

    /// Queues message `id` in its chat's lane (true), or answers it here and now (false: `/stop`).
    async fn dispatch(&self, id: InboxId, m: Inbound) -> bool {
        // `/stop` must not wait behind the turn it stops.
        if commands::parse(&m.text) == Some(commands::Command::Stop) {
            // The answer is stored before the turn is told to stop, so it goes out first.
            let (reply, running) = self.prepare_stop(&m);
            self.finish_with(id, &m, reply).await;
            if let Some(t) = running {
                t.cancel();
            }
            return false;
        }
        let this = self.clone();
        let span = tracing::info_span!("inbound", inbox = id, chat = %m.chat);
        self.inner.lanes.push(
            Self::lane_key(&m),
            async move {
                this.handle(id, m).await;
                this.handled(id).await;
            }
            .instrument(span),
        );
        true
    }

    async fn handle(&self, id: InboxId, m: Inbound) {
        if self.inner.shutdown.is_cancelled() {
            return; // stays pending; answered after restart
        }
        crate::resident::heap::note_activity();
        let mut m = m;
        if m.audio.is_some() {
            match self.transcribe_note(id, &m).await {
                Ok(transcript) => {
                    // The transcript is the user's message (after any caption), marked as voice
                    // unless it is a command ("slash new" said aloud is still a command).
                    let transcript = if commands::parse(&transcript).is_some() {
                        transcript
                    } else {
                        format!("🎙️ {transcript}")
                    };
                    m.text = if m.text.trim().is_empty() {
                        transcript
                    } else {
                        format!("{}\n{transcript}", m.text)
                    };
                }
                Err(reply) => {
                    self.finish_with(id, &m, reply).await;
                    return;
                }
            }
        }
        let mut attached = Vec::new();
        if !m.files.is_empty() {
            let taken = self.take_files(&m).await;
            // Downloads and decoding freed large buffers: let the trimmer give them back.
            crate::resident::heap::note_activity();
            match taken {
                Ok(blocks) => attached = blocks,
                Err(reply) => {
                    self.finish_with(id, &m, reply).await;
                    return;
                }
            }
        }
        let answer = {
            match commands::parse(&m.text) {
                Some(cmd) => commands::run(self, &m, cmd).await.map(Answer::text),
                None => self.converse(id, &m, attached).await,
            }
        };
        let Some(Answer {
            text,
            turns,
            context,
        }) = answer
        else {
            return;
        };
        let out = NewOutbox {
            target: m.chat.to_string(),
            thread: m.thread.clone(),
            reply_to: Some(m.message_id.clone()),
            text,
            dedupe_key: Some(format!("reply:{id}")),
            file: None,
        };
        let turns = turns.as_ref().map(|(s, t)| (*s, t.as_slice()));
        let size = context.as_ref().map(|(ctx, tokens)| (ctx.session, *tokens));
        match self
            .inner
            .store
            .inbox_finish(id, turns, Some(&out), size)
            .await
        {
            Ok(Some(row)) => self.inner.delivery.push_row(row),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot store reply");
                return;
            }
        }
        if context.is_some() && self.speaks(&m) {
            self.speak_reply(id, &m, &out.text).await;
        }
        if let Some((ctx, tokens)) = context {
            self.after_turn(&m, ctx, tokens).await;
        }
        // The turn's request bodies are freed by now (a long one, or one with images, is large).
        crate::resident::heap::note_activity();
    }

    /// The model this chat switched to with `/model`, if any.
    pub async fn chat_model(&self, m: &Inbound) -> Option<String> {
        self.inner
            .store
            .chat_model(&m.chat.to_string())
            .await
            .ok()
            .flatten()
    }

    /// The agent that answers this chat: `/agent` choice, else routing rules, else coordinator.
    pub async fn agent_for(&self, m: &Inbound) -> String {
        let chosen = self
            .inner
            .store
            .chat_agent(&m.chat.to_string())
            .await
            .ok()
            .flatten();
        self.pick_agent(m, chosen)
    }

    /// `chosen` (the chat's `/agent`) if that agent exists, else the routing rules' choice.
    fn pick_agent(&self, m: &Inbound, chosen: Option<String>) -> String {
        match chosen {
            Some(a) if self.inner.agents.exists(&a) => a,
            _ => routing::route(&self.inner.config, m),
        }
    }

    /// Runs an agent turn in the chat's main session: the reply, and the turns to store with it.
    /// `None` when the session cannot be opened (the message stays pending).
    async fn converse(&self, id: InboxId, m: &Inbound, attached: Vec<Block>) -> Option<Answer> {
        let (agent, target, session, model) = match self.main_session(m).await {
            Ok(Ok(open)) => open,
            Ok(Err(why)) => return Some(Answer::text(format!("⏸️ {why}"))),
            Err(e) => {
                tracing::error!(error = %e, "cannot open session");
                return None;
            }
        };
        let typing = self.start_typing(&m.chat, m.thread.as_deref());
        let (live, preview) = self.start_preview(id, m, &typing);
        let ctx = TurnContext {
            agent: agent.clone(),
            session,
            origin: Some(target),
            thread: m.thread.clone(),
            model,
            is_worker: false,
            sender: Some(m.sender.id.clone()),
            cancel: Default::default(),
            live,
            task: None,
            purpose: "chat",
        };
        let text = user_text(m);
        let lane = Self::lane_key(m);
        self.inner
            .running
            .lock()
            .insert(lane.clone(), ctx.cancel.clone());
        // Removed however the turn ends (this future may also be dropped at shutdown).
        struct Running<'a>(&'a Coordinator, String);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.inner.running.lock().remove(&self.1);
            }
        }
        let _running = Running(self, lane);
        let span = tracing::info_span!("turn", agent = %agent, session);
        let mut result = self
            .inner
            .agents
            .run_turn_with(&ctx, &text, attached.clone(), self)
            .instrument(span.clone())
            .await;
        // The provider says the prompt no longer fits: compact, then try once more.
        if let Err(AgentError::Models(e)) = &result
            && e.context_too_long()
        {
            tracing::warn!("context too long; compacting and retrying");
            if let Ok(Some(_)) = self.inner.agents.compact(&ctx, self).await {
                self.notice_compacted(m, session).await;
            }
            result = self
                .inner
                .agents
                .run_turn_with(&ctx, &text, attached, self)
                .instrument(span)
                .await;
        }
        typing.cancel();
        if let Some(p) = preview {
            p.finish().await;
        }
        Some(match result {
            Ok(t) => Answer {
                text: if t.reply.trim().is_empty() {
                    "(no reply)".into()
                } else {
                    t.reply
                },
                turns: Some((session, t.turns)),
                context: Some((ctx, t.context_tokens)),
            },
            Err(AgentError::Models(e)) => Answer::text(format!("⚠️ I couldn't get an answer. {e}")),
            Err(e) => {
                tracing::error!(error = %e, "turn failed");
                Answer::text(format!("⚠️ Something went wrong on my side: {e}"))
            }
        })
    }

    /// Stores `text` as the reply to inbox message `id` (no turns) and queues it.
    /// Cancels the turn running in `m`'s chat (and thread); what to answer.
    pub(crate) fn stop_turn(&self, m: &Inbound) -> String {
        let (reply, running) = self.prepare_stop(m);
        if let Some(t) = running {
            t.cancel();
        }
        reply
    }

    /// What `/stop` answers in this chat, and the running turn's token to cancel (if any).
    fn prepare_stop(&self, m: &Inbound) -> (String, Option<CancellationToken>) {
        match self.inner.running.lock().get(&Self::lane_key(m)) {
            Some(t) if !t.is_cancelled() => {
                ("⏹ Stopping the answer in progress.".into(), Some(t.clone()))
            }
            _ => ("Nothing is running in this chat.".into(), None),
        }
    }

    async fn finish_with(&self, id: InboxId, m: &Inbound, text: String) {
        let out = NewOutbox {
            target: m.chat.to_string(),
            thread: m.thread.clone(),
            reply_to: Some(m.message_id.clone()),
            text,
            dedupe_key: Some(format!("reply:{id}")),
            file: None,
        };
        match self
            .inner
            .store
            .inbox_finish(id, None, Some(&out), None)
            .await
        {
            Ok(Some(row)) => self.inner.delivery.push_row(row),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot store reply"),
        }
    }

    /// Downloads, decodes and transcribes a voice note. `Err` is the polite reply to send instead.
    async fn transcribe_note(&self, id: InboxId, m: &Inbound) -> Result<String, String> {
        let Some(a) = &m.audio else {
            return Err(VOICE_OFF.into());
        };
        let Some(voice) = self.inner.voice.clone() else {
            return Err(VOICE_OFF.into());
        };
        let max_secs = self.inner.config.voice.max_seconds;
        if let Some(size) = a.size_bytes
            && size > MAX_VOICE_BYTES
        {
            return Err(format!(
                "That voice note is too large for me ({:.1} MB; I take up to {} MB).",
                size as f64 / 1e6,
                MAX_VOICE_BYTES / 1_000_000
            ));
        }
        if let Some(d) = a.duration_secs
            && d > max_secs
        {
            return Err(format!(
                "That voice note is too long ({d} s; I take up to {max_secs} s)."
            ));
        }
        let fetcher = self
            .inner
            .channels
            .get(&m.chat.channel)
            .and_then(|c| c.audio().map(|_| c.clone()));
        let Some(channel) = fetcher else {
            return Err(VOICE_OFF.into());
        };
        let Some(audio) = channel.audio() else {
            return Err(VOICE_OFF.into());
        };
        let bytes = match audio.fetch(a).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot download a voice note");
                return Err("I couldn't download that voice note — please send it again.".into());
            }
        };
        if bytes.len() as u64 > MAX_VOICE_BYTES {
            return Err("That voice note is too large for me.".into());
        }
        let samples =
            match tokio::task::spawn_blocking(move || crate::voice::decode::decode(&bytes)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("I couldn't read that voice note: {e}.")),
                Err(_) => return Err("I couldn't read that voice note.".into()),
            };
        let secs = samples.len() as u32 / crate::voice::decode::RATE as u32;
        if secs > max_secs {
            return Err(format!(
                "That voice note is too long ({secs} s; I take up to {max_secs} s)."
            ));
        }
        if let Some((name, bytes)) = voice.to_fetch()
            && self.inner.fetch_told.lock().insert(m.chat.to_string())
        {
            let notice = NewOutbox {
                target: m.chat.to_string(),
                thread: m.thread.clone(),
                reply_to: None,
                text: format!(
                    "🎙️ Getting my speech model ready ({name}, {}) — I'll transcribe your voice note in a moment.",
                    crate::voice::models::mb(bytes)
                ),
                dedupe_key: Some(format!("fetching:{id}")),
                file: None,
            };
            if let Err(e) = self.post(&notice).await {
                tracing::warn!(error = %e, "cannot post the model notice");
            }
        }
        let transcript = match voice.transcribe(samples).await {
            Ok(t) => t,
            Err(e) if e.is_model_problem() => {
                let chat = m.chat.to_string();
                let mut warned = self.inner.model_warned.lock();
                let recently = warned
                    .get(&chat)
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(3600));
                tracing::error!(error = %e, "voice notes cannot be transcribed");
                if recently {
                    return Err("🎙️ (voice notes are unavailable right now)".into());
                }
                warned.insert(chat, Instant::now());
                return Err(format!("🎙️ I can't transcribe voice notes yet: {e}."));
            }
            Err(e) => {
                tracing::error!(error = %e, "transcription failed");
                return Err(
                    "I couldn't transcribe that voice note — please try again or type it.".into(),
                );
            }
        };
        let text = transcript.text.trim().to_string();
        if text.is_empty() {
            return Err("🎙️ I couldn't make out any speech in that voice note.".into());
        }
        if self.inner.config.voice.echo_transcript {
            let echo = NewOutbox {
                target: m.chat.to_string(),
                thread: m.thread.clone(),
                reply_to: None,
                text: match &transcript.language {
                    Some(lang) => format!("🎙️ ({lang}) {text}"),
                    None => format!("🎙️ {text}"),
                },
                dedupe_key: Some(format!("echo:{id}")),
                file: None,
            };
            if let Err(e) = self.post(&echo).await {
                tracing::warn!(error = %e, "cannot post the transcript");
            }
        }
        Ok(text)
    }

    /// After a turn is stored (with its context size): compact when it passed the threshold.
    async fn after_turn(&self, m: &Inbound, ctx: TurnContext, tokens: u64) {
        let cfg = &self.inner.config.compaction;
        if !cfg.enabled || tokens <= cfg.threshold {
            return;
        }
        tracing::info!(
            session = ctx.session,
            tokens,
            threshold = cfg.threshold,
            "compacting"
        );
        match self.inner.agents.compact(&ctx, self).await {
            Ok(Some(_)) => self.notice_compacted(m, ctx.session).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "compaction failed; will try again after the next turn")
            }
        }
    }

    /// The chat's agent, target, open main session and chosen model; `Ok(Err(why))` when a
    /// budget refuses the agent a turn now.
    async fn main_session(
        &self,
        m: &Inbound,
    ) -> crate::store::Result<Result<(String, String, SessionId, Option<String>), String>> {
        let (chosen, model) = self
            .inner
            .store
            .chat_choices(&m.chat.to_string())
            .await
            .unwrap_or_default();
        let agent = self.pick_agent(m, chosen);
        if let Some(why) = self.inner.oversight.ledger.refusal(&agent).await {
            return Ok(Err(why));
        }
        let target = m.chat.to_string();
        let key = main_key(&agent, &target, m.thread.as_deref());
        let session = self
            .inner
            .store
            .session_open(
                &key,
                SessionKind::Main,
                &agent,
                Some(&target),
                m.thread.as_deref(),
            )
            .await?;
        Ok(Ok((agent, target, session, model)))
    }

    /// Compacts this chat's main session now (`/compact`).
    pub(crate) async fn compact_chat(&self, m: &Inbound) -> String {
        let (agent, target, session, model) = match self.main_session(m).await {
            Ok(Ok(open)) => open,
            Ok(Err(why)) => return format!("⏸️ {why}"),
            Err(e) => return format!("⚠️ {e}"),
        };
        let ctx = TurnContext {
            agent,
            session,
            origin: Some(target),
            thread: m.thread.clone(),
            model,
            is_worker: false,
            sender: Some(m.sender.id.clone()),
            cancel: Default::default(),
            live: None,
            task: None,
            purpose: "chat",
        };
        match self.inner.agents.compact(&ctx, self).await {
            Ok(Some(summary)) => format!(
                "🧹 Compacted this conversation. Summary:\n\n{}",
                summary.trim()
            ),
            Ok(None) => "Nothing to compact yet.".into(),
            Err(e) => format!("⚠️ Compaction failed: {e}"),
        }
    }

    async fn notice_compacted(&self, m: &Inbound, session: crate::store::SessionId) {
        let out = NewOutbox {
            target: m.chat.to_string(),
            thread: m.thread.clone(),
            reply_to: None,
            text: "🧹 This conversation was getting long, so I summarized the older messages (the summary is in my daily notes).".into(),
            dedupe_key: Some(format!("compact:{session}:{}", m.message_id)),
            file: None,
        };
        if let Err(e) = self.post(&out).await {
            tracing::warn!(error = %e, "cannot post the compaction notice");
        }
    }

    /// A live preview of the reply to inbox message `id`, when its channel streams: where the
    /// agent writes the reply as it goes, and the preview showing it.
    fn start_preview(
        &self,
        id: InboxId,
        m: &Inbound,
        typing: &CancellationToken,
    ) -> (
        Option<Arc<tokio::sync::watch::Sender<String>>>,
        Option<crate::delivery::preview::Preview>,
    ) {
        if !self.inner.config.streams(&m.chat.channel) {
            return (None, None);
        }
        let Some(channel) = self.inner.channels.get(&m.chat.channel).cloned() else {
            return (None, None);
        };
        let (tx, rx) = tokio::sync::watch::channel(String::new());
        let place = crate::delivery::preview::Place {
            target: m.chat.clone(),
            thread: m.thread.clone(),
            reply_to: Some(m.message_id.clone()),
            is_direct: m.is_direct,
        };
        match self
            .inner
            .previews
            .start(channel, id, place, rx, typing.clone())
        {
            Some(p) => (Some(Arc::new(tx)), Some(p)),
            None => (None, None),
        }
    }

    /// Preview updates shown since start (for benchmarks).
    pub fn preview_updates(&self) -> u64 {
        self.inner.previews.updates_shown()
    }

    /// Shows "typing…" until the returned token is cancelled, if the channel can.
    fn start_typing(&self, chat: &Target, thread: Option<&str>) -> CancellationToken {
        let stop = CancellationToken::new();
        let Some(ch) = self.inner.channels.get(&chat.channel).cloned() else {
            return stop;
        };
        if ch.typing().is_none() {
            return stop;
        }
        let (chat, thread, s) = (chat.clone(), thread.map(str::to_string), stop.clone());
        tokio::spawn(async move {
            // A reply that comes quickly needs no indicator; this also spares the platform's rate
            // limits (and our connections) a call per message in a burst.
            tokio::select! {
                _ = s.cancelled() => return,
                _ = tokio::time::sleep(TYPING_DELAY) => {}
            }
            loop {
                if let Some(t) = ch.typing()
                    && let Err(e) = t.typing(&chat, thread.as_deref()).await
                {
                    tracing::debug!(error = %e, "typing indicator failed");
                }
                tokio::select! {
                    _ = s.cancelled() => return,
                    _ = tokio::time::sleep(TYPING_RENEW_EVERY) => {}
                }
            }
        });
        stop
    }
}

/// How long a turn runs before "typing…" is shown.
const TYPING_DELAY: Duration = Duration::from_millis(250);

const VOICE_OFF: &str =
    "🎙️ Voice notes are not enabled on this gateway (voice.enabled) — please type your message.";

/// Voice notes larger than this are refused before download (Telegram bots cannot fetch more).
const MAX_VOICE_BYTES: u64 = 20_000_000;

/// What handling a message produced: the reply, the turns to store, and the context size.
struct Answer {
    text: String,
    turns: SessionTurns,
    context: Option<(TurnContext, u64)>,
}

impl Answer {
    fn text(text: String) -> Answer {
        Answer {
            text,
            turns: None,
            context: None,
        }
    }
}

/// Turns to store in a session along with a reply.
pub(crate) type SessionTurns = Option<(crate::store::SessionId, Vec<crate::store::NewTurn>)>;

/// The text the agent sees: the message, with what it replies to when the platform gives it.
fn user_text(m: &Inbound) -> String {
    match &m.reply_to_text {
        Some(q) if !q.trim().is_empty() => format!("[replying to: {}]\n{}", q.trim(), m.text),
        _ => m.text.clone(),
    }
}

impl Coordinator {
    /// Access control at the door: the message back when it is for the agents; otherwise it is
    /// dealt with here (ignored, or its sender offered a pairing code) and `None` is returned.
    async fn admit(&self, m: Inbound) -> Result<Option<Inbound>, SinkError> {
        match self.inner.access.decide(&self.inner.store, &m).await {
            Decision::Allow => Ok(Some(m)),
            Decision::Ignore => {
                tracing::debug!(chat = %m.chat, sender = %m.sender.id, "message not for us or not allowed; ignored");
                Ok(None)
            }
            Decision::Pair => {
                if let Some(text) = self.inner.access.pair(&self.inner.store, &m).await {
                    let out = NewOutbox {
                        target: m.chat.to_string(),
                        thread: m.thread.clone(),
                        reply_to: Some(m.message_id.clone()),
                        text,
                        dedupe_key: Some(format!("pair:{}:{}", m.chat, m.message_id)),
                        file: None,
                    };
                    self.post(&out)
                        .await
                        .map_err(|e| SinkError(e.to_string()))?;
                }
                Ok(None)
            }
        }
    }

    /// Stores admitted messages in one transaction and hands each new one to its session's lane
    /// (one seen before is already answered or queued).
    async fn store_and_dispatch(&self, messages: Vec<Inbound>) -> Result<(), SinkError> {
        let ids = self
            .inner
            .store
            .inbox_insert_many(&messages)
            .await
            .map_err(|e| SinkError(e.to_string()))?;
        if self.inner.cluster.is_shared() {
            // The chat's holder answers, in order with what other gateways stored for it.
            let mut chats: Vec<String> = Vec::new();
            let mut fresh = Vec::new();
            for (id, m) in ids.into_iter().zip(&messages) {
                if let Some(id) = id {
                    fresh.push(id);
                    let chat = m.chat.to_string();
                    if !chats.contains(&chat) {
                        chats.push(chat);
                    }
                }
            }
            self.sweep_chats(&chats, &fresh).await;
            return Ok(());
        }
        for (id, m) in ids.into_iter().zip(messages) {
            if let Some(id) = id {
                self.dispatch(id, m).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl InboundSink for Coordinator {
    async fn accept(&self, m: Inbound) -> Result<(), SinkError> {
        match self.admit(m).await? {
            Some(m) => self.store_and_dispatch(vec![m]).await,
            None => Ok(()),
        }
    }

    async fn accept_batch(&self, messages: Vec<Inbound>) -> Result<(), SinkError> {
        let mut admitted = Vec::with_capacity(messages.len());
        for m in messages {
            admitted.extend(self.admit(m).await?);
        }
        self.store_and_dispatch(admitted).await
    }

    async fn accept_command(&self, m: Inbound) -> Result<bool, SinkError> {
        if self.inner.access.decide(&self.inner.store, &m).await == Decision::Ignore {
            tracing::debug!(chat = %m.chat, sender = %m.sender.id, "slash command refused");
            return Ok(false);
        }
        self.accept(m).await.map(|_| true)
    }

    async fn pressed(&self, press: switchboard_channel::Press) -> Option<String> {
        self.on_press(&press).await
    }
}
