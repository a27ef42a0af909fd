//! `web_search` through the configured provider: Brave Search's API or a SearXNG instance's JSON
//! API. The provider is the owner's choice, so the SSRF guard does not apply to it (a SearXNG
//! instance often lives on the LAN); the results are links for `web_fetch`, which is guarded.

use crate::config::{SearchConfig, SearchProvider};
use serde_json::Value;

const BRAVE: &str = "https://api.search.brave.com";

pub struct Hit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

pub async fn search(
    client: &reqwest::Client,
    cfg: &SearchConfig,
    query: &str,
    count: usize,
) -> Result<Vec<Hit>, String> {
    let base = cfg
        .base_url
        .as_deref()
        .unwrap_or(BRAVE)
        .trim_end_matches('/');
    let req = match cfg.provider {
        SearchProvider::Brave => {
            let key = cfg
                .api_key
                .as_deref()
                .ok_or("web search needs tools.web.search.apiKey (a Brave Search API key)")?;
            client
                .get(format!("{base}/res/v1/web/search"))
                .query(&[("q", query), ("count", &count.to_string())])
                .header("X-Subscription-Token", key)
        }
        SearchProvider::Searxng => client
            .get(format!("{base}/search"))
            .query(&[("q", query), ("format", "json")]),
    };
    let resp = req
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("search failed: {}", e.without_url()))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("search failed: {}", e.without_url()))?;
    match status.as_u16() {
        200..=299 => {}
        401 | 403 => {
            return Err(format!(
                "the search provider refused the API key ({status})"
            ));
        }
        429 => return Err("the search provider's rate limit was reached; try again later".into()),
        _ => return Err(format!("the search provider answered {status}")),
    }
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| format!("the search provider's answer is not JSON: {e}"))?;
    let (list, snippet_key) = match cfg.provider {
        SearchProvider::Brave => (&v["web"]["results"], "description"),
        SearchProvider::Searxng => (&v["results"], "content"),
    };
    let s = |r: &Value, k: &str| r[k].as_str().unwrap_or("").to_string();
    Ok(list
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|r| r["url"].is_string())
        .take(count)
        .map(|r| Hit {
            title: s(r, "title"),
            url: s(r, "url"),
            snippet: strip_tags(&s(r, snippet_key)),
        })
        .collect())
}

/// Brave marks matches with `<strong>`; the model wants the words.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}
