//! The HTTP plumbing both wire formats share.

use super::ProviderError;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The one HTTP client every provider and token refresh shares (each client carries its own TLS
/// root store and connection pool: one per provider cost ~1 MB of RSS), with `TCP_NODELAY`
/// (small request/response exchanges on a kept-alive connection otherwise stall ~40 ms on delayed
/// ACKs). Timeouts are per request: providers have their own `timeoutSeconds`.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        // A burst opens a connection per request in flight. Keeping only 8 idle closed most of
        // them as each wave of answers came back, and the next wave connected again (`connect`
        // was the largest system call in a burst's profile; over TLS each is a handshake). Idle
        // ones still close after reqwest's 90 s: a conversation's next message, a minute later,
        // should not wait for a handshake.
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A provider's view of the shared client: its own request timeout.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

impl Http {
    pub fn new(client: reqwest::Client, timeout: Duration) -> Http {
        Http { client, timeout }
    }

    pub fn post(&self, url: String) -> reqwest::RequestBuilder {
        self.client.post(url).timeout(self.timeout)
    }
}

/// What a model API answered: a success to read, or a failure with its status, headers and body
/// (read whole: error bodies are small, and classifying them needs the text).
pub enum Sent {
    Ok(reqwest::Response),
    Failed {
        status: u16,
        headers: HeaderMap,
        body: String,
    },
}

impl Sent {
    /// The failure classified (`retry-after` honoured).
    pub fn error(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
        ProviderError::from_status(status, retry_after(headers), body)
    }
}

/// Sends the request; a network failure is classified here.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Sent, ProviderError> {
    let resp = req.send().await.map_err(network)?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(Sent::Ok(resp));
    }
    let headers = resp.headers().clone();
    let body = resp.text().await.map_err(network)?;
    Ok(Sent::Failed {
        status,
        headers,
        body,
    })
}

/// Sends the request `build` makes for `token`; when the answer is a 401 and the token is an
/// OAuth one (revoked before its expiry), refreshes it once and sends again. A success to read,
/// or the failure classified.
pub async fn send_refreshing(
    mut token: Option<String>,
    oauth: Option<&super::credentials::OAuth>,
    build: impl Fn(Option<&str>) -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let mut retried = false;
    loop {
        match send(build(token.as_deref())).await? {
            Sent::Ok(resp) => return Ok(resp),
            Sent::Failed { status: 401, .. } if !retried && oauth.is_some() => {
                if let (Some(o), Some(t)) = (oauth, &token) {
                    token = Some(o.after_unauthorized(t).await?);
                }
                retried = true;
            }
            Sent::Failed {
                status,
                headers,
                body,
            } => return Err(Sent::error(status, &headers, &body)),
        }
    }
}

/// A successful answer's whole body.
pub async fn text(resp: reqwest::Response) -> Result<String, ProviderError> {
    resp.text().await.map_err(network)
}

/// Whether the answer is a stream of server-sent events (a server may ignore `stream: true`
/// and answer with one JSON document, which the callers then read as such).
pub fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// The answer's events as they arrive.
pub fn events(resp: reqwest::Response) -> Events {
    Events(sse_stream::SseStream::new(
        http::Response::from(resp).into_body(),
    ))
}

pub struct Events(sse_stream::SseStream<reqwest::Body>);

impl Events {
    /// The next event (`event` name, `data`), `None` at the end of the stream. A connection
    /// that breaks mid-answer is a network error: the same request may well work again.
    pub async fn next(&mut self) -> Result<Option<(Option<String>, String)>, ProviderError> {
        use futures_util::StreamExt;
        loop {
            match self.0.next().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ProviderError::Network(format!(
                        "the answer was cut off: {e}"
                    )));
                }
                // Comments and retry hints carry no data.
                Some(Ok(sse)) => {
                    if let Some(data) = sse.data {
                        return Ok(Some((sse.event, data)));
                    }
                }
            }
        }
    }
}

fn network(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Network("timed out".into())
    } else if e.is_connect() {
        ProviderError::Network("cannot connect".into())
    } else {
        ProviderError::Network(e.without_url().to_string())
    }
}

/// `retry-after` in seconds (the form model APIs use).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get("retry-after")?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}
