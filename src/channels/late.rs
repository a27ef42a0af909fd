//! A sink for inbound messages that exists before the coordinator does.
//!
//! A platform's handshake (Discord's gateway connection: HELLO, IDENTIFY, READY) takes round
//! trips to the platform that need nothing from the store. Handing the adapter this sink lets
//! it connect at once, so the handshake overlaps opening the store and resuming stored work.
//! A message that arrives meanwhile waits in `accept` until [`LateSink::set`] names the
//! coordinator, which happens after recovery: stored messages still enter their chats' lanes
//! before any new one, and the adapter acknowledges nothing before it is stored.

use async_trait::async_trait;
use std::sync::Arc;
use switchboard_channel::{Inbound, InboundSink, Press, SinkError};
use tokio::sync::watch;

pub struct LateSink {
    target: watch::Sender<Option<Arc<dyn InboundSink>>>,
}

impl LateSink {
    pub fn new() -> Arc<LateSink> {
        Arc::new(LateSink {
            target: watch::Sender::new(None),
        })
    }

    /// From now on messages go to `sink`; those waiting are handed over.
    pub fn set(&self, sink: Arc<dyn InboundSink>) {
        self.target.send_replace(Some(sink));
    }

    async fn target(&self) -> Result<Arc<dyn InboundSink>, SinkError> {
        let mut rx = self.target.subscribe();
        let ready = rx.wait_for(Option::is_some).await;
        match ready.as_deref() {
            Ok(Some(sink)) => Ok(sink.clone()),
            _ => Err(SinkError("the gateway is not running".into())),
        }
    }
}

#[async_trait]
impl InboundSink for LateSink {
    async fn accept(&self, message: Inbound) -> Result<(), SinkError> {
        self.target().await?.accept(message).await
    }

    async fn accept_batch(&self, messages: Vec<Inbound>) -> Result<(), SinkError> {
        self.target().await?.accept_batch(messages).await
    }

    async fn accept_command(&self, message: Inbound) -> Result<bool, SinkError> {
        self.target().await?.accept_command(message).await
    }

    async fn pressed(&self, press: Press) -> Option<String> {
        self.target().await.ok()?.pressed(press).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use switchboard_channel::Target;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    #[async_trait]
    impl InboundSink for Recorder {
        async fn accept(&self, message: Inbound) -> Result<(), SinkError> {
            self.0.lock().unwrap().push(message.text);
            Ok(())
        }
    }

    fn message(text: &str) -> Inbound {
        Inbound::direct(Target::new("discord", "1"), "1", text, text)
    }

    #[tokio::test]
    async fn a_message_waits_for_the_sink_and_is_then_handed_over() {
        let late = LateSink::new();
        let waiting = {
            let late = late.clone();
            tokio::spawn(async move { late.accept(message("early")).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "accepted before there was a sink");
        let recorder = Arc::new(Recorder::default());
        late.set(recorder.clone());
        waiting.await.unwrap().unwrap();
        late.accept(message("later")).await.unwrap();
        assert_eq!(*recorder.0.lock().unwrap(), ["early", "later"]);
    }
}
