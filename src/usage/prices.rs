//! What a model's tokens cost: the built-in list of public prices (US dollars per million tokens),
//! with `providers.NAME.prices.MODEL` over it. A model found in neither is recorded as unpriced,
//! and so is every model of a provider on this machine or the private network (a local server
//! costs nothing per token).

use crate::config::{Config, Price};
use crate::providers::Usage;
use std::collections::BTreeMap;

/// Public list prices, matched by the longest prefix of the model's name (so dated snapshots such
/// as `claude-sonnet-4-5-20250929` find their family). Order does not matter.
const BUILT_IN: &[(&str, f64, f64, f64, f64)] = &[
    // name prefix, input, output, cache read, cache write
    ("claude-opus-4-5", 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-6", 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4", 15.0, 75.0, 1.50, 18.75),
    ("claude-sonnet-4", 3.0, 15.0, 0.30, 3.75),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.30, 3.75),
    ("claude-3-5-sonnet", 3.0, 15.0, 0.30, 3.75),
    ("claude-haiku-4-5", 1.0, 5.0, 0.10, 1.25),
    ("claude-3-5-haiku", 0.80, 4.0, 0.08, 1.0),
    ("claude-3-haiku", 0.25, 1.25, 0.03, 0.30),
    ("kimi-k2.5", 0.60, 3.0, 0.10, 0.60),
    ("kimi-k2-thinking", 0.60, 2.5, 0.15, 0.60),
    ("kimi-k2", 0.60, 2.5, 0.15, 0.60),
    ("gpt-5-nano", 0.05, 0.40, 0.005, 0.05),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.25),
    ("gpt-5", 1.25, 10.0, 0.125, 1.25),
    ("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.10),
    ("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.40),
    ("gpt-4.1", 2.0, 8.0, 0.50, 2.0),
    ("gpt-4o-mini", 0.15, 0.60, 0.075, 0.15),
    ("gpt-4o", 2.50, 10.0, 1.25, 2.50),
    ("o4-mini", 1.10, 4.40, 0.275, 1.10),
    ("o3-mini", 1.10, 4.40, 0.55, 1.10),
    ("o3", 2.0, 8.0, 0.50, 2.0),
    ("deepseek-chat", 0.28, 0.42, 0.028, 0.28),
    ("deepseek-reasoner", 0.28, 0.42, 0.028, 0.28),
    ("gemini-2.5-pro", 1.25, 10.0, 0.31, 1.25),
    ("gemini-2.5-flash", 0.30, 2.50, 0.075, 0.30),
];

/// The price list the gateway uses: built-in prices, the config's over them, and the providers
/// that cost nothing.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    /// `provider/model` → price, from the config.
    configured: BTreeMap<String, Price>,
    /// Providers served from this machine or the private network.
    free: Vec<String>,
}

impl Prices {
    pub fn from_config(config: &Config) -> Prices {
        let mut p = Prices::default();
        for (name, provider) in &config.providers {
            for (model, price) in &provider.prices {
                p.configured.insert(format!("{name}/{model}"), *price);
            }
            if provider.base_url.as_deref().is_some_and(is_local) {
                p.free.push(name.clone());
            }
        }
        p
    }

    /// The price of `provider/model`, or `None` when unknown (or free).
    pub fn price(&self, model_ref: &str) -> Option<Price> {
        if let Some(p) = self.configured.get(model_ref) {
            return Some(*p);
        }
        let (provider, model) = model_ref.split_once('/').unwrap_or(("", model_ref));
        if self.free.iter().any(|f| f == provider) {
            return None;
        }
        built_in(model)
    }

    /// What `usage` cost on `model_ref`, in millionths of a dollar, and whether it was priced.
    pub fn cost_micros(&self, model_ref: &str, usage: &Usage) -> (i64, bool) {
        match self.price(model_ref) {
            Some(p) => (cost(&p, usage), true),
            None => (0, false),
        }
    }
}

/// The built-in price of a model name (longest matching prefix; case-insensitive).
pub fn built_in(model: &str) -> Option<Price> {
    let model = model.to_ascii_lowercase();
    // A router prefix such as `anthropic/claude-…` (OpenRouter) names the same model.
    let model = model.rsplit('/').next().unwrap_or(&model);
    BUILT_IN
        .iter()
        .filter(|(prefix, ..)| model.starts_with(prefix))
        .max_by_key(|(prefix, ..)| prefix.len())
        .map(|&(_, input, output, read, write)| Price {
            input,
            output,
            cache_read: Some(read),
            cache_write: Some(write),
        })
}

/// Dollars per million tokens × tokens = millionths of a dollar per token, exactly.
fn cost(p: &Price, u: &Usage) -> i64 {
    let read = p.cache_read.unwrap_or(p.input);
    let write = p.cache_write.unwrap_or(p.input);
    let micros = p.input * u.input_tokens as f64
        + p.output * u.output_tokens as f64
        + read * u.cache_read_tokens as f64
        + write * u.cache_write_tokens as f64;
    micros.round() as i64
}

/// A base URL on loopback or a private network: a model server of one's own.
fn is_local(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => host == "localhost" || host.ends_with(".local"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, r: u64, w: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cache_read_tokens: r,
            cache_write_tokens: w,
        }
    }

    #[test]
    fn the_longest_prefix_prices_a_model_and_config_wins() {
        let sonnet = built_in("claude-sonnet-4-5-20250929").unwrap();
        assert_eq!((sonnet.input, sonnet.output), (3.0, 15.0));
        let opus = built_in("claude-opus-4-5-20251101").unwrap();
        assert_eq!(opus.input, 5.0, "opus 4.5 is not priced as opus 4");
        assert_eq!(built_in("claude-opus-4-1").unwrap().input, 15.0);
        assert_eq!(built_in("gpt-4o-mini").unwrap().input, 0.15);
        assert_eq!(built_in("anthropic/claude-sonnet-4").unwrap().input, 3.0);
        assert!(built_in("llama3.2").is_none());

        let mut p = Prices::default();
        p.configured.insert(
            "moonshot/kimi-k2.5".into(),
            Price {
                input: 1.0,
                output: 2.0,
                cache_read: None,
                cache_write: None,
            },
        );
        p.free.push("ollama".into());
        // 1000 input at $1/M + 500 output at $2/M + 100 cache reads at the input price.
        assert_eq!(
            p.cost_micros("moonshot/kimi-k2.5", &usage(1000, 500, 100, 0)),
            (2100, true)
        );
        // 1M input tokens of Sonnet cost three dollars; cache reads a tenth.
        assert_eq!(
            p.cost_micros(
                "anthropic/claude-sonnet-4-5",
                &usage(1_000_000, 0, 1_000_000, 0)
            ),
            (3_300_000, true)
        );
        assert_eq!(
            p.cost_micros("ollama/claude-sonnet-4", &usage(10, 10, 0, 0)),
            (0, false)
        );
        assert_eq!(p.cost_micros("x/unknown", &usage(10, 10, 0, 0)), (0, false));
    }

    #[test]
    fn only_loopback_and_private_servers_are_free() {
        assert!(is_local("http://127.0.0.1:11434/v1"));
        assert!(is_local("http://localhost:8080"));
        assert!(is_local("http://192.168.1.20/v1"));
        assert!(!is_local("https://api.moonshot.ai/v1"));
        assert!(is_local("http://[::1]:8080/v1"));
        assert!(!is_local("not a url"));
    }
}
