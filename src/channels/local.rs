//! The local channel: chats named `local:NAME`, used by `switchboard chat` and `send --to local:…`.
//!
//! Delivered messages go to an in-memory mailbox per chat (the last few hundred kept), numbered so a
//! terminal client can long-poll for what arrived after the last one it saw — including task
//! results that arrive long after the message that started them.

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use switchboard_channel::{ChannelError, Outbound, Sender};
use tokio::sync::watch;

const KEEP: usize = 256;

/// An id for a message typed into the terminal or the control room (these have no platform to
/// number them): unique, and ordered by time.
pub fn new_message_id() -> String {
    format!("{}-{:016x}", crate::store::now_ms(), rand::random::<u64>())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalMessage {
    pub seq: u64,
    pub text: String,
    /// The id of the message this answers, if it is a reply.
    pub reply_to: Option<String>,
}

pub struct LocalChannel {
    boxes: Mutex<HashMap<String, VecDeque<LocalMessage>>>,
    seq: watch::Sender<u64>,
}

impl Default for LocalChannel {
    fn default() -> Self {
        Self {
            boxes: Mutex::new(HashMap::new()),
            seq: watch::channel(0).0,
        }
    }
}

impl LocalChannel {
    pub fn latest_seq(&self) -> u64 {
        *self.seq.borrow()
    }

    fn after(&self, chat: &str, seq: u64) -> Vec<LocalMessage> {
        self.boxes
            .lock()
            .get(chat)
            .map(|q| q.iter().filter(|m| m.seq > seq).cloned().collect())
            .unwrap_or_default()
    }

    /// Messages for `chat` numbered after `seq`, waiting up to `wait` for the first one.
    pub async fn wait(&self, chat: &str, seq: u64, wait: Duration) -> Vec<LocalMessage> {
        let mut rx = self.seq.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let found = self.after(chat, seq);
            if !found.is_empty() {
                return found;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Vec::new(),
            }
        }
    }
}

#[async_trait]
impl Sender for LocalChannel {
    async fn send(&self, m: &Outbound) -> Result<String, ChannelError> {
        // Store first, then announce: a waiter woken by the announcement always finds it.
        let mut boxes = self.boxes.lock();
        let seq = self.latest_seq() + 1;
        let q = boxes.entry(m.target.chat.clone()).or_default();
        q.push_back(LocalMessage {
            seq,
            text: m.text.clone(),
            reply_to: m.reply_to.clone(),
        });
        if q.len() > KEEP {
            q.pop_front();
        }
        self.seq.send_replace(seq);
        drop(boxes);
        Ok(seq.to_string())
    }

    fn max_len(&self) -> usize {
        1 << 20
    }
}
