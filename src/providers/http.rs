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
        // Bursts open many connections; keep only a few idle ones afterwards.
        .pool_max_idle_per_host(8)
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

/// Sends the request; returns status, headers and body text, or a classified network error.
pub async fn post_json(
    req: reqwest::RequestBuilder,
) -> Result<(u16, HeaderMap, String), ProviderError> {
    let resp = req.send().await.map_err(network)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.map_err(network)?;
    Ok((status, headers, text))
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
