//! Model providers and the router that picks one.
//!
//! - `types`: our conversation types and the typed [`ProviderError`].
//! - `anthropic`, `openai`: the two wire formats, over reqwest.
//! - [`Models`]: resolves roles (`default`, `coding`…) and `provider/model` refs, and fails over
//!   along `models.fallbacks` when a provider errors, so a dead provider costs a note, not an answer.

mod anthropic;
mod http;
mod openai;
mod types;

pub use types::*;

use crate::config::{Config, ProviderKind};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// One model API. `req.model` names the model at that provider.
#[async_trait]
pub trait Provider: Send + Sync {
    async fn complete(&self, req: &Request) -> Result<Response, ProviderError>;
}

/// Every model failed; the reasons, in the order tried, for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.summary())]
pub struct AllFailed {
    pub reasons: Vec<(String, ProviderError)>,
}

impl AllFailed {
    /// "anthropic: no API key (set providers.anthropic.apiKey); moonshot: rate limited".
    pub fn summary(&self) -> String {
        if self.reasons.is_empty() {
            return "no model is configured for this agent".into();
        }
        self.reasons
            .iter()
            .map(|(model, e)| {
                let provider = model.split('/').next().unwrap_or(model);
                format!("{provider}: {e}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn context_too_long(&self) -> bool {
        self.reasons
            .iter()
            .any(|(_, e)| matches!(e, ProviderError::ContextTooLong))
    }
}

/// Roles, refs and the providers behind them.
pub struct Models {
    providers: HashMap<String, Arc<dyn Provider>>,
    roles: BTreeMap<String, String>,
    fallbacks: Vec<String>,
    /// Retries of a retryable error on one model before moving on.
    retries: u32,
}

impl Models {
    pub fn from_config(config: &Config) -> Models {
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        for (name, p) in &config.providers {
            let client = http::client(Duration::from_secs(p.timeout_seconds));
            let provider: Arc<dyn Provider> = match p.kind_for(name) {
                ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(
                    client,
                    p.base_url.as_deref(),
                    p.api_key.as_deref(),
                )),
                ProviderKind::Openai => Arc::new(openai::OpenAi::new(
                    client,
                    p.base_url.as_deref(),
                    p.api_key.as_deref(),
                )),
            };
            providers.insert(name.clone(), provider);
        }
        Models {
            providers,
            roles: config.models.roles.clone(),
            fallbacks: config.models.fallbacks.clone(),
            retries: 2,
        }
    }

    /// Replaces (or adds) the provider called `name`; for embedding and benchmarks.
    pub fn set_provider(&mut self, name: &str, provider: Arc<dyn Provider>) {
        self.providers.insert(name.to_string(), provider);
    }

    /// `role` or `provider/model` → `provider/model`.
    pub fn resolve(&self, role_or_ref: &str) -> String {
        self.roles
            .get(role_or_ref)
            .cloned()
            .unwrap_or_else(|| role_or_ref.to_string())
    }

    /// Calls the model for `role_or_ref`, retrying retryable errors briefly and then trying each
    /// fallback in order. Returns the response and the `provider/model` that produced it.
    pub async fn complete(
        &self,
        role_or_ref: &str,
        mut req: Request,
    ) -> Result<(Response, String), AllFailed> {
        let mut chain = vec![self.resolve(role_or_ref)];
        for f in &self.fallbacks {
            let f = self.resolve(f);
            if !chain.contains(&f) {
                chain.push(f);
            }
        }
        let mut reasons = Vec::new();
        for model_ref in chain {
            let Some((prov, model)) = model_ref.split_once('/') else {
                continue;
            };
            let Some(provider) = self.providers.get(prov) else {
                continue;
            };
            req.model = model.to_string();
            let mut attempt = 0;
            let err = loop {
                match provider.complete(&req).await {
                    Ok(resp) => return Ok((resp, model_ref)),
                    Err(e) if e.is_retryable() && attempt < self.retries => {
                        let wait = match &e {
                            ProviderError::RateLimited {
                                retry_after: Some(d),
                            } => *d,
                            _ => Duration::from_millis(500 * 2u64.pow(attempt)),
                        };
                        // A long wait is better spent on the next model.
                        if wait > Duration::from_secs(10) {
                            break e;
                        }
                        tracing::warn!(model = %model_ref, error = %e, ?wait, "model call failed; retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err(e) => break e,
                }
            };
            tracing::warn!(model = %model_ref, error = %err, "model failed");
            let stop = matches!(err, ProviderError::ContextTooLong);
            reasons.push((model_ref, err));
            if stop {
                break;
            }
        }
        Err(AllFailed { reasons })
    }
}

/// Joins consecutive messages of the same role (providers want them alternating; our session may
/// hold, say, a task note right after the user's message).
pub fn merge_roles(messages: &[Message]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(last) if last.role == m.role => last.content.extend(m.content.iter().cloned()),
            _ => out.push(m.clone()),
        }
    }
    out
}
