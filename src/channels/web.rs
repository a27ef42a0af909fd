//! The web channel: chats named `web:NAME`, the control room's chat page.
//!
//! Delivered messages go to a numbered in-memory mailbox per chat (the same one the terminal's
//! local channel keeps), so a page that reconnects asks for what came after the last number it
//! saw. A reply being written is followed live ([`Live`]): each change of its text is broadcast
//! to the pages that have the chat open, with no pacing (a browser holds one open stream and has
//! no edit rate limit). Nothing here is stored: the session's turns in the store are the history.

use super::local::{LocalChannel, LocalMessage};
use async_trait::async_trait;
use std::time::Duration;
use switchboard_channel::{ChannelError, Live, Outbound, Sender, Target};
use tokio::sync::{broadcast, watch};

/// The text of a reply so far, for the pages that show chat `chat`.
#[derive(Debug, Clone)]
pub struct Draft {
    pub chat: String,
    pub reply_to: String,
    pub text: String,
}

pub struct WebChannel {
    mail: LocalChannel,
    drafts: broadcast::Sender<Draft>,
}

impl Default for WebChannel {
    fn default() -> Self {
        Self {
            mail: LocalChannel::default(),
            // Drafts are whole texts: a page that falls behind only needs the latest.
            drafts: broadcast::channel(16).0,
        }
    }
}

impl WebChannel {
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
