//! The web tools: `web_fetch` (on unless `tools.web.fetch: false`) and `web_search` (when a
//! provider is configured). Their HTTP clients are built on first use, so a gateway whose agents
//! never browse pays nothing for them at idle.

mod fetch;
pub mod guard;
mod search;

use crate::config::WebConfig;
use crate::providers::ToolSpec;
use crate::tools::{ToolOutput, builtin::spec, untrusted};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const MAX_REDIRECTS: usize = 5;

/// A redirect the guard refused (its message reaches the model).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RedirectRefused(pub String);

pub struct Web {
    cfg: WebConfig,
    fetch_client: OnceLock<Result<reqwest::Client, String>>,
    search_client: OnceLock<Result<reqwest::Client, String>>,
}

impl Web {
    pub fn new(cfg: &WebConfig) -> Web {
        Web {
            cfg: cfg.clone(),
            fetch_client: OnceLock::new(),
            search_client: OnceLock::new(),
        }
    }

    fn search_on(&self) -> bool {
        self.cfg.search.as_ref().is_some_and(|s| {
            s.api_key.is_some() || s.provider == crate::config::SearchProvider::Searxng
        })
    }

    pub fn offers(&self, name: &str) -> bool {
        match name {
            "web_fetch" => self.cfg.fetch,
            "web_search" => self.search_on(),
            _ => false,
        }
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        // Built once (their schemas shared), offered per turn as the config says.
        static SPECS: std::sync::LazyLock<[ToolSpec; 2]> = std::sync::LazyLock::new(|| {
            [
                spec(
                    "web_fetch",
                    "Fetch a web page (http/https) and read it as text; JSON and plain text come back as they are.",
                    json!({ "type": "object", "properties": {
                        "url": { "type": "string" },
                        "max_chars": { "type": "integer", "description": "characters of text to return (default 40000)" }
                    }, "required": ["url"] }),
                ),
                spec(
                    "web_search",
                    "Search the web; returns titles, URLs and snippets (read a result with web_fetch).",
                    json!({ "type": "object", "properties": {
                        "query": { "type": "string" },
                        "count": { "type": "integer", "description": "results, 1-20 (default 8)" }
                    }, "required": ["query"] }),
                ),
            ]
        });
        let [fetch, search] = &*SPECS;
        let mut v = Vec::new();
        if self.cfg.fetch {
            v.push(fetch.clone());
        }
        if self.search_on() {
            v.push(search.clone());
        }
        v
    }

    pub async fn run(&self, name: &str, input: &Value) -> ToolOutput {
        match name {
            "web_fetch" => self.fetch(input).await,
            "web_search" => self.search(input).await,
            _ => ToolOutput::error(format!("no tool named `{name}`")),
        }
    }

    async fn fetch(&self, input: &Value) -> ToolOutput {
        let url = match crate::tools::builtin::required(input, "url") {
            Ok(u) => u.trim(),
            Err(e) => return ToolOutput::error(e),
        };
        let max_chars = input
            .get("max_chars")
            .and_then(Value::as_u64)
            .map_or(fetch::DEFAULT_CHARS, |n| {
                (n as usize).clamp(500, fetch::MAX_CHARS)
            });
        let client = match self.fetch_client() {
            Ok(c) => c,
            Err(e) => return ToolOutput::error(e),
        };
        if !self.cfg.allow_private
            && let Ok(u) = reqwest::Url::parse(url)
            && let Err(e) = guard::check_literal(&u)
        {
            return ToolOutput::error(e);
        }
        match fetch::fetch(client, url, self.cfg.max_bytes).await {
            Ok(page) => {
                let is_error = page.status >= 400;
                ToolOutput {
                    text: fetch::render(&page, max_chars),
                    images: Vec::new(),
                    is_error,
                }
            }
            Err(e) => ToolOutput::error(format!("cannot fetch {url}: {e}")),
        }
    }

    async fn search(&self, input: &Value) -> ToolOutput {
        let Some(cfg) = &self.cfg.search else {
            return ToolOutput::error("no search provider is configured (tools.web.search)");
        };
        let query = match crate::tools::builtin::required(input, "query") {
            Ok(q) => q,
            Err(e) => return ToolOutput::error(e),
        };
        let count = input
            .get("count")
            .and_then(Value::as_u64)
            .map_or(8, |n| (n as usize).clamp(1, 20));
        let client = match self
            .search_client
            .get_or_init(|| build(self.cfg.timeout_seconds, false))
        {
            Ok(c) => c,
            Err(e) => return ToolOutput::error(e.clone()),
        };
        match search::search(client, cfg, query, count).await {
            Ok(hits) if hits.is_empty() => ToolOutput::ok(format!("no results for `{query}`")),
            Ok(hits) => {
                let text = hits
                    .iter()
                    .enumerate()
                    .map(|(i, h)| format!("{}. {}\n   {}\n   {}", i + 1, h.title, h.url, h.snippet))
                    .collect::<Vec<_>>()
                    .join("\n");
                ToolOutput::ok(untrusted(&format!("web_search {query}"), &text))
            }
            Err(e) => ToolOutput::error(e),
        }
    }

    fn fetch_client(&self) -> Result<&reqwest::Client, String> {
        self.fetch_client
            .get_or_init(|| build(self.cfg.timeout_seconds, !self.cfg.allow_private))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A client bounded in time and redirects; `guarded`: through the SSRF guard, at every hop.
fn build(timeout_seconds: u64, guarded: bool) -> Result<reqwest::Client, String> {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(RedirectRefused(format!(
                "stopped after {MAX_REDIRECTS} redirects"
            )));
        }
        if !matches!(attempt.url().scheme(), "http" | "https") {
            let why = format!("refused a redirect to a `{}` URL", attempt.url().scheme());
            return attempt.error(RedirectRefused(why));
        }
        if guarded && let Err(e) = guard::check_literal(attempt.url()) {
            return attempt.error(RedirectRefused(format!("redirect {e}")));
        }
        attempt.follow()
    });
    let mut b = reqwest::Client::builder()
        .user_agent(concat!(
            "switchboard/",
            env!("CARGO_PKG_VERSION"),
            " (web_fetch)"
        ))
        .timeout(Duration::from_secs(timeout_seconds))
        .connect_timeout(Duration::from_secs(timeout_seconds.min(10)))
        .redirect(redirects)
        .tcp_nodelay(true)
        // A proxy would resolve and connect for us, past the guard.
        .no_proxy();
    if guarded {
        b = b.dns_resolver(Arc::new(guard::GuardedResolver));
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}
