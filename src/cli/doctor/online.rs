//! `doctor --online`: one cheap authenticated call per service the config names — Telegram
//! `getMe`, Discord `users/@me`, each provider's model list — so a revoked token or key shows up
//! before a message fails. Errors never carry the token (reqwest's URL is stripped).

use super::Report;
use crate::config::{Config, ProviderKind};
use crate::providers::credentials::{Credential, CredentialSource};
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

/// The JSON body of a response, or why there is none usable (status and the service's words).
async fn json(r: Result<reqwest::Response, reqwest::Error>) -> Result<serde_json::Value, String> {
    let r = r.map_err(|e| e.without_url().to_string())?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if status.is_success() {
        return Ok(body);
    }
    let said = ["description", "message"]
        .iter()
        .find_map(|k| body[k].as_str().or_else(|| body["error"][k].as_str()))
        .unwrap_or_default()
        .to_string();
    Err(format!("HTTP {status} {said}").trim().to_string())
}

pub async fn check(c: &Config, r: &mut Report) {
    let http = client();
    if let Some(t) = &c.channels.telegram
        && let Some(token) = &t.token
    {
        let url = format!("{}/bot{token}/getMe", t.api_url.trim_end_matches('/'));
        match json(http.get(url).send().await).await {
            Ok(v) => r.ok(
                "telegram online",
                format!(
                    "getMe: @{}",
                    v["result"]["username"].as_str().unwrap_or("?")
                ),
            ),
            Err(e) => r.bad(
                "telegram online",
                format!("getMe failed: {e} (check channels.telegram.token)"),
            ),
        }
    }
    if let Some(d) = &c.channels.discord
        && let Some(token) = &d.token
    {
        let url = format!("{}/v10/users/@me", d.api_url.trim_end_matches('/'));
        let req = http
            .get(url)
            .header("Authorization", format!("Bot {token}"));
        match json(req.send().await).await {
            Ok(v) => r.ok(
                "discord online",
                format!("users/@me: {}", v["username"].as_str().unwrap_or("?")),
            ),
            Err(e) => r.bad(
                "discord online",
                format!("users/@me failed: {e} (check channels.discord.token)"),
            ),
        }
    }
    for (name, p) in super::used_providers(c) {
        let what = format!("provider {name} online");
        let cred = CredentialSource::for_provider(
            name,
            p.api_key.as_deref(),
            &c.state_dir(),
            http.clone(),
        );
        let token = match cred.current() {
            Credential::None => None,
            Credential::ApiKey(k) => Some(k),
            Credential::OAuth(o) => match o.access_token().await {
                Ok(t) => Some(t),
                Err(e) => {
                    r.bad(&what, format!("OAuth token: {e}"));
                    continue;
                }
            },
        };
        let kind = p.kind_for(name);
        let (url, req) = match kind {
            ProviderKind::Anthropic => {
                let base = p.base_url.as_deref().unwrap_or("https://api.anthropic.com");
                let url = format!("{}/v1/models", base.trim_end_matches('/'));
                let mut req = http.get(&url).header("anthropic-version", "2023-06-01");
                if let Some(t) = &token {
                    req = req.header("x-api-key", t);
                }
                (url, req)
            }
            ProviderKind::Openai => {
                let base = p.base_url.as_deref().unwrap_or("https://api.openai.com/v1");
                let url = format!("{}/models", base.trim_end_matches('/'));
                let mut req = http.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                (url, req)
            }
        };
        match json(req.send().await).await {
            Ok(v) => r.ok(
                &what,
                format!("{url}: {} models", v["data"].as_array().map_or(0, Vec::len)),
            ),
            Err(e) => r.bad(
                &what,
                format!("{url}: {e} (check providers.{name}.apiKey or `switchboard auth {name}`)"),
            ),
        }
    }
}
