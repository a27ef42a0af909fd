//! Model providers and the router that picks one.
//!
//! - `types`: our conversation types and the typed [`ProviderError`].
//! - `anthropic`, `openai`: the two wire formats, over reqwest.
//! - [`Models`]: resolves roles (`default`, `coding`…) and `provider/model` refs, and fails over
//!   along `models.fallbacks` when a provider errors, so a dead provider costs a note, not an answer.

mod anthropic;
pub mod credentials;
mod health;
mod http;
mod openai;
mod types;

pub use health::Problem;
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

    /// [`Provider::complete`], handing the answer's text to `sink` as it is written. The
    /// response is the same one `complete` would give. Without streaming, the text comes at once.
    async fn stream(&self, req: &Request, sink: &dyn TextSink) -> Result<Response, ProviderError> {
        let resp = self.complete(req).await?;
        emit_text(&resp, sink);
        Ok(resp)
    }
}

/// Hands a whole response's text to `sink` (for answers that did not stream).
pub(crate) fn emit_text(resp: &Response, sink: &dyn TextSink) {
    for b in &resp.content {
        if let Block::Text { text } = b {
            sink.delta(text);
        }
    }
}

/// Who a model call is for: what its usage is recorded against.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub agent: String,
    /// The chat the call answers (a target), when there is one.
    pub chat: Option<String>,
    pub session: Option<i64>,
    pub task: Option<i64>,
    /// `chat`, `task`, `cron`, `heartbeat` or `compaction`.
    pub purpose: &'static str,
}

/// Told about every model call that answered and every provider failure worth a person's
/// attention. The router knows neither prices nor owners; the gateway's ledger does.
#[async_trait::async_trait]
pub trait Meter: Send + Sync {
    /// `model_ref` (`provider/model`, after failover) answered `call` using `usage`.
    async fn used(&self, call: &Call, model_ref: &str, usage: &Usage);
    /// A provider is failing (told on the first failure of a cause, then at most hourly).
    async fn failing(&self, problem: &Problem, error: &ProviderError);
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
    /// Providers that just failed, until when, and why: skipped while a fallback can answer, so
    /// a dead provider is not hammered with every message.
    cooling: parking_lot::Mutex<HashMap<String, (std::time::Instant, String)>>,
    health: health::Health,
    /// Providers whose models cannot see images (`vision: false`).
    blind: std::collections::HashSet<String>,
    /// Where usage and failures are reported (the gateway's ledger).
    meter: Option<Arc<dyn Meter>>,
}

/// How long a failing provider is skipped (longer for credentials, which need a person).
fn cooldown_for(e: &ProviderError) -> Option<Duration> {
    match e {
        ProviderError::Auth(_) => Some(Duration::from_secs(300)),
        ProviderError::RateLimited { retry_after } => Some(
            retry_after
                .unwrap_or(Duration::from_secs(30))
                .min(Duration::from_secs(600)),
        ),
        ProviderError::Overloaded | ProviderError::Server { .. } | ProviderError::Network(_) => {
            Some(Duration::from_secs(60))
        }
        _ => None,
    }
}

impl Models {
    pub fn from_config(config: &Config) -> Models {
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        let shared = http::client();
        for (name, p) in &config.providers {
            let client = http::Http::new(shared.clone(), Duration::from_secs(p.timeout_seconds));
            let cred = credentials::CredentialSource::for_provider(
                name,
                p.api_key.as_deref(),
                &config.state_dir(),
                shared.clone(),
            );
            let provider: Arc<dyn Provider> = match p.kind_for(name) {
                ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(
                    client,
                    p.base_url.as_deref(),
                    cred,
                )),
                ProviderKind::Openai => {
                    Arc::new(openai::OpenAi::new(client, p.base_url.as_deref(), cred))
                }
            };
            providers.insert(name.clone(), provider);
        }
        Models {
            blind: config
                .providers
                .iter()
                .filter(|(_, p)| !p.vision)
                .map(|(n, _)| n.clone())
                .collect(),
            providers,
            roles: config.models.roles.clone(),
            fallbacks: config.models.fallbacks.clone(),
            retries: 2,
            cooling: parking_lot::Mutex::default(),
            health: health::Health::default(),
            meter: None,
        }
    }

    /// Reports every call's usage and every provider failure to `meter`.
    pub fn set_meter(&mut self, meter: Arc<dyn Meter>) {
        self.meter = Some(meter);
    }

    /// Replaces (or adds) the provider called `name`; for embedding and benchmarks.
    pub fn set_provider(&mut self, name: &str, provider: Arc<dyn Provider>) {
        self.providers.insert(name.to_string(), provider);
    }

    /// Providers failing right now, and why (for `gateway status`).
    pub fn problems(&self) -> Vec<Problem> {
        self.health.problems()
    }

    /// `role` or `provider/model` → `provider/model`.
    /// Whether the model `role_or_ref` resolves to sees images (`providers.NAME.vision`).
    pub fn sees_images(&self, role_or_ref: &str) -> bool {
        let r = self.resolve(role_or_ref);
        let provider = r.split('/').next().unwrap_or_default();
        !self.blind.contains(provider)
    }

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
        req: Request,
        call: &Call,
    ) -> Result<(Response, String), AllFailed> {
        self.complete_streaming(role_or_ref, req, None, call).await
    }

    /// [`Models::complete`], streaming the answer's text to `sink` when given. A retry or a
    /// fallback starts the text over ([`TextSink::restart`]).
    pub async fn complete_streaming(
        &self,
        role_or_ref: &str,
        mut req: Request,
        sink: Option<&dyn TextSink>,
        call: &Call,
    ) -> Result<(Response, String), AllFailed> {
        let answer = self.fail_over(role_or_ref, &mut req, sink).await;
        if let (Ok((resp, model_ref)), Some(m)) = (&answer, &self.meter) {
            m.used(call, model_ref, &resp.usage).await;
        }
        answer
    }

    async fn fail_over(
        &self,
        role_or_ref: &str,
        req: &mut Request,
        sink: Option<&dyn TextSink>,
    ) -> Result<(Response, String), AllFailed> {
        let mut chain = vec![self.resolve(role_or_ref)];
        for f in &self.fallbacks {
            let f = self.resolve(f);
            if !chain.contains(&f) {
                chain.push(f);
            }
        }
        let mut reasons = Vec::new();
        let mut skipped = Vec::new();
        for model_ref in chain {
            let provider = model_ref.split('/').next().unwrap_or_default().to_string();
            let cooling = self.cooling.lock().get(&provider).cloned();
            if let Some((until, why)) = cooling
                && until > std::time::Instant::now()
            {
                skipped.push((model_ref, why));
                continue;
            }
            match self.try_model(&model_ref, req, sink).await {
                Ok(resp) => return Ok((resp, model_ref)),
                Err(None) => {}
                Err(Some(e)) => {
                    let stop = matches!(e, ProviderError::ContextTooLong);
                    reasons.push((model_ref, e));
                    if stop {
                        return Err(AllFailed { reasons });
                    }
                }
            }
        }
        // Everything else failed: a cooling provider is better than no answer (one try each).
        for (model_ref, why) in skipped {
            match self.try_model(&model_ref, req, sink).await {
                Ok(resp) => return Ok((resp, model_ref)),
                Err(Some(e)) => reasons.push((model_ref, e)),
                Err(None) => reasons.push((model_ref, ProviderError::CoolingDown(why))),
            }
        }
        Err(AllFailed { reasons })
    }
}

impl Models {
    /// One model, with brief retries. `Err(None)` when the ref names no configured provider.
    async fn try_model(
        &self,
        model_ref: &str,
        req: &mut Request,
        sink: Option<&dyn TextSink>,
    ) -> Result<Response, Option<ProviderError>> {
        let (prov, model) = model_ref.split_once('/').ok_or(None)?;
        let provider = self.providers.get(prov).ok_or(None)?;
        req.model = model.to_string();
        let described;
        let req: &Request = if self.blind.contains(prov) {
            match without_images(req) {
                Some(r) => {
                    described = r;
                    &described
                }
                None => req,
            }
        } else {
            req
        };
        let mut attempt = 0;
        let err = loop {
            let answer = match sink {
                Some(s) => {
                    s.restart();
                    provider.stream(req, s).await
                }
                None => provider.complete(req).await,
            };
            match answer {
                Ok(resp) => {
                    self.cooling.lock().remove(prov);
                    self.health.recovered(prov);
                    return Ok(resp);
                }
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
        if self.health.failed(prov, &err)
            && let Some(m) = &self.meter
            && let Some(p) = self.health.problem(prov, &err)
        {
            m.failing(&p, &err).await;
        }
        if let Some(d) = cooldown_for(&err) {
            self.cooling.lock().insert(
                prov.to_string(),
                (std::time::Instant::now() + d, err.to_string()),
            );
        }
        Err(Some(err))
    }
}

/// `req` with the images people sent replaced by a note, for a model that cannot see them;
/// `None` when it has none.
fn without_images(req: &Request) -> Option<Request> {
    let has = req.messages.iter().any(|m| {
        m.content
            .iter()
            .any(|b| matches!(b, Block::ImageFile { .. }))
    });
    if !has {
        return None;
    }
    let messages = req
        .messages
        .iter()
        .map(|m| Message {
            role: m.role,
            content: m
                .content
                .iter()
                .map(|b| match b {
                    Block::ImageFile { path, .. } => Block::Text {
                        text: format!(
                            "[an image was sent ({path}), but this model cannot see images: say so if it matters]"
                        ),
                    },
                    b => b.clone(),
                })
                .collect(),
        })
        .collect();
    Some(Request {
        messages: Arc::new(messages),
        ..req.clone()
    })
}
