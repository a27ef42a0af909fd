//! The web channel: chats named `web:NAME`, the control room's chat page.
//!
//! Delivered messages go to a numbered in-memory mailbox per chat (the same one the terminal's
//! local channel keeps), so a page that reconnects asks for what came after the last number it
//! saw. A reply being written is followed live ([`Live`]): each change of its text is broadcast
//! to the pages that have the chat open, with no pacing (a browser holds one open stream and has
//! no edit rate limit). Messages themselves are not stored here: the session's turns in the store
//! are the history.
//!
//! Files and voice notes sent from the page are written to `<stateDir>/uploads/` before their
//! message is accepted (so a restart can still fetch them), fetched from there by the intake like
//! a platform's download, and pruned after a day.

use super::local::{LocalChannel, LocalMessage};
use async_trait::async_trait;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_channel::{
    AudioAttachment, AudioFetcher, ChannelError, FileAttachment, FileFetcher, Live, Outbound,
    Sender, Target,
};
use tokio::sync::{broadcast, watch};

/// The text of a reply so far, for the pages that show chat `chat`.
#[derive(Debug, Clone)]
pub struct Draft {
    pub chat: String,
    pub reply_to: String,
    pub text: String,
}

/// How long an upload is kept for its message to be handled.
const KEEP_UPLOADS: Duration = Duration::from_secs(24 * 3600);

pub struct WebChannel {
    mail: LocalChannel,
    drafts: broadcast::Sender<Draft>,
    uploads: PathBuf,
}

impl WebChannel {
    /// A web channel keeping uploads in `uploads`.
    pub fn new(uploads: PathBuf) -> Self {
        Self {
            mail: LocalChannel::default(),
            // Drafts are whole texts: a page that falls behind only needs the latest.
            drafts: broadcast::channel(16).0,
            uploads,
        }
    }

    /// Writes an uploaded file and returns its reference (prunes day-old uploads on the way).
    pub fn store_upload(&self, bytes: &[u8]) -> std::io::Result<String> {
        std::fs::create_dir_all(&self.uploads)?;
        if let Ok(dir) = std::fs::read_dir(&self.uploads) {
            for e in dir.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > KEEP_UPLOADS);
                if old {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let id: String = rand::random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tmp = self.uploads.join(format!("{id}.part"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.uploads.join(&id))?;
        Ok(id)
    }

    fn read_upload(&self, file_ref: &str) -> Result<Vec<u8>, ChannelError> {
        // Only our own references: 32 hex digits, nothing that could name another path.
        if file_ref.len() != 32 || !file_ref.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChannelError::Rejected(format!(
                "`{file_ref}` is not an upload"
            )));
        }
        std::fs::read(self.uploads.join(file_ref))
            .map_err(|e| ChannelError::Rejected(format!("the upload is gone: {e}")))
    }

    pub fn latest_seq(&self) -> u64 {
        self.mail.latest_seq()
    }

    /// Messages for `chat` numbered after `seq`, waiting up to `wait` for the first one.
    pub async fn wait(&self, chat: &str, seq: u64, wait: Duration) -> Vec<LocalMessage> {
        self.mail.wait(chat, seq, wait).await
    }

    /// Drafts of replies being written, in every web chat.
    pub fn drafts(&self) -> broadcast::Receiver<Draft> {
        self.drafts.subscribe()
    }
}

#[async_trait]
impl FileFetcher for WebChannel {
    async fn fetch_file(&self, file: &FileAttachment) -> Result<Vec<u8>, ChannelError> {
        self.read_upload(&file.file_ref)
    }
}

#[async_trait]
impl AudioFetcher for WebChannel {
    async fn fetch(&self, audio: &AudioAttachment) -> Result<Vec<u8>, ChannelError> {
        self.read_upload(&audio.file_ref)
    }
}

#[async_trait]
impl Sender for WebChannel {
    async fn send(&self, m: &Outbound) -> Result<String, ChannelError> {
        self.mail.send(m).await
    }

    fn max_len(&self) -> usize {
        self.mail.max_len()
    }
}

impl Live for WebChannel {
    fn follow(&self, target: &Target, reply_to: &str, mut text: watch::Receiver<String>) {
        let tx = self.drafts.clone();
        let chat = target.chat.clone();
        let reply_to = reply_to.to_string();
        tokio::spawn(async move {
            while text.changed().await.is_ok() {
                let now = text.borrow_and_update().clone();
                // No page open: nothing to build.
                if tx.receiver_count() > 0 && !now.trim().is_empty() {
                    let _ = tx.send(Draft {
                        chat: chat.clone(),
                        reply_to: reply_to.clone(),
                        text: now,
                    });
                }
            }
        });
    }
}
