//! Keyed serial execution: jobs with the same key run one after another, in the order pushed;
//! jobs with different keys run in parallel.
//!
//! This is how a chat's messages are handled strictly in order while chats proceed independently,
//! and how messages to one chat are delivered in order while other chats are not held up. A lane
//! exists only while it has work, so idle chats cost nothing.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub struct Lanes<K> {
    queues: Arc<Mutex<HashMap<K, VecDeque<Job>>>>,
    tracker: TaskTracker,
}

impl<K> Clone for Lanes<K> {
    fn clone(&self) -> Self {
        Self {
            queues: self.queues.clone(),
            tracker: self.tracker.clone(),
        }
    }
}

impl<K: Eq + Hash + Clone + Send + 'static> Default for Lanes<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone + Send + 'static> Lanes<K> {
    pub fn new() -> Self {
        Self {
            queues: Arc::new(Mutex::new(HashMap::new())),
            tracker: TaskTracker::new(),
        }
    }

    /// Queues `job` behind the earlier jobs of `key`.
    pub fn push(&self, key: K, job: impl Future<Output = ()> + Send + 'static) {
        let mut queues = self.queues.lock();
        if let Some(q) = queues.get_mut(&key) {
            q.push_back(Box::pin(job));
            return;
        }
        queues.insert(key.clone(), VecDeque::new());
        drop(queues);
        let queues = self.queues.clone();
        self.tracker.spawn(async move {
            let mut next: Option<Job> = Some(Box::pin(job));
            while let Some(job) = next.take() {
                job.await;
                let mut q = queues.lock();
                next = q.get_mut(&key).and_then(VecDeque::pop_front);
                if next.is_none() {
                    q.remove(&key);
                }
            }
        });
    }

    /// Lanes with work right now.
    pub fn busy(&self) -> usize {
        self.queues.lock().len()
    }

    /// Waits until every lane has drained (jobs are expected to notice shutdown themselves).
    pub async fn drain(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_is_ordered_and_different_keys_overlap() {
        let lanes: Lanes<&'static str> = Lanes::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Lane "a": a job that waits for lane "b" to run, then a second job.
        let l = log.clone();
        lanes.push("a", async move {
            rx.await.ok();
            l.lock().push("a1");
        });
        let l = log.clone();
        lanes.push("a", async move { l.lock().push("a2") });
        let l = log.clone();
        lanes.push("b", async move {
            l.lock().push("b1");
            tx.send(()).ok();
        });
        tokio::time::timeout(Duration::from_secs(5), lanes.drain())
            .await
            .expect("lanes drain");
        assert_eq!(*log.lock(), vec!["b1", "a1", "a2"]);
        assert_eq!(lanes.busy(), 0);
    }
}
