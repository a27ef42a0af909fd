//! Spoken replies (`voice.reply`): after a reply's text is stored (and so already on its way),
//! it is read aloud and posted as voice notes through the outbox, each once. A speech engine that
//! fails costs the voice note, never the text.

use super::Coordinator;
use crate::config::VoiceReply;
use crate::store::{InboxId, NewOutbox, OutboxFile, VoiceMeta};
use switchboard_channel::Inbound;

impl Coordinator {
    /// Whether the reply to `m` is also spoken.
    pub(super) fn speaks(&self, m: &Inbound) -> bool {
        let wanted = match self.inner.config.voice.reply {
            VoiceReply::Off => false,
            VoiceReply::Spoken => m.audio.is_some(),
            VoiceReply::Always => true,
        };
        wanted
            && self.inner.speaker.is_some()
            && self
                .inner
                .channels
                .get(&m.chat.channel)
                .is_some_and(|c| c.voice_notes().is_some())
    }

    /// Reads `text` (the reply to inbox message `id`) aloud and queues the voice notes.
    pub(super) async fn speak_reply(&self, id: InboxId, m: &Inbound, text: &str) {
        let Some(speaker) = self.inner.speaker.clone() else {
            return;
        };
        let notes = match speaker.speak(text).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "no spoken reply (the text was sent)");
                return;
            }
        };
        let dir = self.inner.config.state_dir().join("outbox-files");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(error = %e, "cannot store a voice note");
            return;
        }
        for (i, note) in notes.into_iter().enumerate() {
            let path = dir.join(format!("reply-{id}-{i}.ogg"));
            if let Err(e) = std::fs::write(&path, &note.ogg) {
                tracing::warn!(error = %e, "cannot store a voice note");
                return;
            }
            let out = NewOutbox {
                target: m.chat.to_string(),
                thread: m.thread.clone(),
                reply_to: None,
                text: String::new(),
                dedupe_key: Some(format!("voice:{id}:{i}")),
                file: Some(OutboxFile {
                    path: path.display().to_string(),
                    name: "voice.ogg".into(),
                    mime: "audio/ogg".into(),
                    voice: Some(VoiceMeta {
                        duration_secs: note.duration_secs,
                        waveform: note.waveform,
                    }),
                }),
            };
            match self.post(&out).await {
                Ok(true) => {}
                // Queued before (a re-run after a restart): this copy is not needed.
                Ok(false) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => tracing::warn!(error = %e, "cannot queue a voice note"),
            }
        }
    }
}
