use std::time::Duration;

/// A failure talking to a platform, classified by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The platform asked us to wait (Telegram's `retry_after`, Discord's rate-limit headers).
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// A network failure or a 5xx: the same request may succeed later.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The platform refused the request for good (bad chat id, message too long, forbidden).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The token is wrong or revoked; nothing will work until the owner fixes it.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The channel named in a target is not configured or not running.
    #[error("channel `{0}` is not enabled")]
    NotEnabled(String),
}

impl ChannelError {
    /// Whether sending the same message again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// How long the platform asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The core could not store an inbound message; the adapter must not acknowledge it.
#[derive(Debug, thiserror::Error)]
#[error("could not store inbound message: {0}")]
pub struct SinkError(pub String);
