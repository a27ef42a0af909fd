//! Checks that need more than types: references between sections, ranges, time zones, URLs.
//! Each problem is reported with the key path it belongs to, so the file position can be found.

use super::types::Config;
use std::net::IpAddr;

const CHANNELS: &[&str] = &["telegram", "discord", "local", "web"];

pub fn validate(c: &Config) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut err = |path: String, msg: String| errs.push((path, msg));

    let bind = c.gateway.bind.as_str();
    if !matches!(bind, "loopback" | "lan") && bind.parse::<IpAddr>().is_err() {
        err(
            "gateway.bind".into(),
            format!("`{bind}` is not `loopback`, `lan` or an IP address"),
        );
    }
    let store = c.store.url.trim();
    if store != "sqlite" {
        // Never echoes the value: it may hold a password.
        let postgres = store.starts_with("postgres://") || store.starts_with("postgresql://");
        if !postgres || store.parse::<postgres::Config>().is_err() {
            err(
                "store.url".into(),
                "must be \"sqlite\" or a PostgreSQL URL (postgres://user:password@host:5432/database)".into(),
            );
        }
    }
    if let Some(tz) = &c.timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        err(
            "timezone".into(),
            format!("`{tz}` is not an IANA time zone (e.g. Europe/London)"),
        );
    }
    for (name, p) in &c.providers {
        if let Some(url) = &p.base_url
            && reqwest::Url::parse(url).is_err()
        {
            err(
                format!("providers.{name}.baseUrl"),
                format!("`{url}` is not a URL"),
            );
        }
        if p.timeout_seconds == 0 {
            err(
                format!("providers.{name}.timeoutSeconds"),
                "must be at least 1".into(),
            );
        }
    }
    let model_ref_ok = |r: &str| match r.split_once('/') {
        Some((prov, model)) => !model.is_empty() && c.providers.contains_key(prov),
        None => false,
    };
    let providers = || c.providers.keys().cloned().collect::<Vec<_>>().join(", ");
    for (role, r) in &c.models.roles {
        if !model_ref_ok(r) {
            err(
                format!("models.{role}"),
                format!(
                    "`{r}` is not `provider/model` with a configured provider (providers: {})",
                    providers()
                ),
            );
        }
    }
    for (i, r) in c.models.fallbacks.iter().enumerate() {
        if !model_ref_ok(r) {
            err(
                format!("models.fallbacks[{i}]"),
                format!(
                    "`{r}` is not `provider/model` with a configured provider (providers: {})",
                    providers()
                ),
            );
        }
    }
    if c.agents.is_empty() {
        err("agents".into(), "at least one agent is needed".into());
    }
    let coordinators: Vec<&String> = c
        .agents
        .iter()
        .filter(|(_, a)| a.coordinator)
        .map(|(n, _)| n)
        .collect();
    if coordinators.len() > 1 {
        err(
            format!("agents.{}.coordinator", coordinators[1]),
            format!(
                "only one agent can be the coordinator ({} already is)",
                coordinators[0]
            ),
        );
    }
    if coordinators.is_empty() && c.agents.len() > 1 {
        err(
            "agents".into(),
            "mark one agent with `coordinator: true`".into(),
        );
    }
    for (name, a) in &c.agents {
        if !valid_name(name) {
            err(
                format!("agents.{name}"),
                "agent names use lowercase letters, digits, `-` and `_`".into(),
            );
        }
        let m = a.model.as_deref().unwrap_or("default");
        if !c.models.roles.contains_key(m) && !model_ref_ok(m) {
            let path = if a.model.is_some() {
                format!("agents.{name}.model")
            } else {
                format!("agents.{name}")
            };
            err(
                path,
                format!(
                    "model `{m}` is neither a role in `models` nor `provider/model` with a configured provider"
                ),
            );
        }
    }
    for (i, rule) in c.routing.iter().enumerate() {
        if !c.agents.contains_key(&rule.agent) {
            err(
                format!("routing[{i}].agent"),
                format!("no agent named `{}`", rule.agent),
            );
        }
        if let Some(ch) = &rule.match_.channel
            && !CHANNELS.contains(&ch.as_str())
        {
            err(
                format!("routing[{i}].match.channel"),
                format!("`{ch}` is not one of {}", CHANNELS.join(", ")),
            );
        }
    }
    if c.workers.max_concurrent == 0 {
        err("workers.maxConcurrent".into(), "must be at least 1".into());
    }
    if c.workers.timeout_seconds == 0 {
        err("workers.timeoutSeconds".into(), "must be at least 1".into());
    }
    if let Some(t) = &c.channels.telegram
        && reqwest::Url::parse(&t.api_url).is_err()
    {
        err(
            "channels.telegram.apiUrl".into(),
            format!("`{}` is not a URL", t.api_url),
        );
    }
    if let Some(w) = c
        .channels
        .telegram
        .as_ref()
        .and_then(|t| t.webhook.as_ref())
    {
        match reqwest::Url::parse(&w.url) {
            Err(_) => err(
                "channels.telegram.webhook.url".into(),
                format!("`{}` is not a URL", w.url),
            ),
            Ok(u) if !matches!(u.scheme(), "https" | "http") => err(
                "channels.telegram.webhook.url".into(),
                "must be an https:// address (Telegram posts only to HTTPS)".into(),
            ),
            Ok(u) if crate::web::reserved_path(u.path()) => err(
                "channels.telegram.webhook.url".into(),
                format!(
                    "its path `{}` is one the gateway already serves; use a path of its own, e.g. /telegram",
                    u.path()
                ),
            ),
            Ok(_) => {}
        }
        let ok = (1..=256).contains(&w.secret.len())
            && w.secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            err(
                "channels.telegram.webhook.secret".into(),
                "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)".into(),
            );
        }
    }
    if let Some(Err(e)) = c
        .channels
        .discord
        .as_ref()
        .and_then(|d| d.shards.as_ref())
        .map(|s| s.range())
    {
        err("channels.discord.shards".into(), e);
    }
    if let Some(d) = &c.channels.discord
        && reqwest::Url::parse(&d.api_url).is_err()
    {
        err(
            "channels.discord.apiUrl".into(),
            format!("`{}` is not a URL", d.api_url),
        );
    }
    if c.voice.threads == 0 {
        err("voice.threads".into(), "must be at least 1".into());
    }
    if c.voice.max_seconds == 0 {
        err("voice.maxSeconds".into(), "must be at least 1".into());
    }
    if c.compaction.threshold < 1000 {
        err(
            "compaction.threshold".into(),
            "must be at least 1000 tokens".into(),
        );
    }
    if c.memory.prompt_chars < 1000 {
        err(
            "memory.promptChars".into(),
            "must be at least 1000 characters".into(),
        );
    }
    if c.tools.exec.timeout_seconds == 0 {
        err(
            "tools.exec.timeoutSeconds".into(),
            "must be at least 1".into(),
        );
    }
    for (i, a) in c.tools.exec.allow.iter().enumerate() {
        if a.trim().is_empty() || a.contains(char::is_whitespace) {
            err(
                format!("tools.exec.allow[{i}]"),
                "each entry is one program name, without arguments".into(),
            );
        }
    }
    validate_tools(c, &mut err);
    validate_ops(c, &mut err);
    errs
}

/// `heartbeat`, `owner`, `budgets` and `providers.NAME.prices`.
fn validate_ops(c: &Config, err: &mut impl FnMut(String, String)) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&c.logging.level) {
        err(
            "logging.level".into(),
            format!(
                "`{}` is not a log level or filter (error, warn, info, debug, trace, or e.g. \"info,switchboard=debug\"): {e}",
                c.logging.level
            ),
        );
    }
    let target = |t: &str| {
        t.parse::<switchboard_channel::Target>()
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    if let Some(o) = &c.owner
        && let Err(e) = target(o)
    {
        err("owner".into(), e);
    }
    if let Some(h) = &c.heartbeat {
        if let Err(e) = h.interval() {
            err("heartbeat.every".into(), e);
        }
        if let Err(e) = h.hours() {
            err("heartbeat.activeHours".into(), e);
        }
        if let Some(a) = &h.agent
            && !c.agents.contains_key(a)
        {
            err("heartbeat.agent".into(), format!("no agent named `{a}`"));
        }
        match (&h.to, &c.owner) {
            (Some(t), _) => {
                if let Err(e) = target(t) {
                    err("heartbeat.to".into(), e);
                }
            }
            (None, Some(_)) => {}
            (None, None) => err(
                "heartbeat.to".into(),
                "say where a heartbeat that finds something posts (a target, or set `owner`)"
                    .into(),
            ),
        }
    }
    let usd = |v: Option<f64>| v.is_some_and(|v| !(v.is_finite() && v >= 0.0));
    let b = &c.budgets;
    for (key, v) in [("dailyUsd", b.daily_usd), ("monthlyUsd", b.monthly_usd)] {
        if usd(v) {
            err(
                format!("budgets.{key}"),
                "must be a number of dollars, 0 or more".into(),
            );
        }
    }
    for (name, a) in &b.agents {
        if !c.agents.contains_key(name) {
            err(
                format!("budgets.agents.{name}"),
                format!("no agent named `{name}`"),
            );
        }
        for (key, v) in [("dailyUsd", a.daily_usd), ("monthlyUsd", a.monthly_usd)] {
            if usd(v) {
                err(
                    format!("budgets.agents.{name}.{key}"),
                    "must be a number of dollars, 0 or more".into(),
                );
            }
        }
    }
    for (name, p) in &c.providers {
        for (model, price) in &p.prices {
            let all = [
                Some(price.input),
                Some(price.output),
                price.cache_read,
                price.cache_write,
            ];
            if all.iter().any(|v| usd(*v)) {
                err(
                    format!("providers.{name}.prices.{model}"),
                    "prices are dollars per million tokens, 0 or more".into(),
                );
            }
        }
    }
}

/// `mcp`, `tools.web`, `tools.approve` and `agents.NAME.tools`.
fn validate_tools(c: &Config, err: &mut impl FnMut(String, String)) {
    for (name, s) in &c.mcp.servers {
        let at = format!("mcp.servers.{name}");
        if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            || name.is_empty()
        {
            err(
                at.clone(),
                "server names use letters, digits, `-` and `_` (they prefix the tool names)".into(),
            );
        }
        match (&s.command, &s.url) {
            (Some(_), Some(_)) => err(at.clone(), "give `command` or `url`, not both".into()),
            (None, None) => err(
                at.clone(),
                "needs `command` (a program to start) or `url` (a streamable HTTP endpoint)".into(),
            ),
            (Some(cmd), None) if cmd.trim().is_empty() => {
                err(format!("{at}.command"), "is empty".into())
            }
            (None, Some(url)) => match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => err(
                    format!("{at}.url"),
                    format!("`{url}` is not an http(s) URL"),
                ),
            },
            _ => {}
        }
        if s.command.is_none() && (!s.args.is_empty() || !s.env.is_empty() || s.cwd.is_some()) {
            err(
                at.clone(),
                "`args`, `env` and `cwd` belong to a `command` server".into(),
            );
        }
        if s.url.is_none() && !s.headers.is_empty() {
            err(
                format!("{at}.headers"),
                "`headers` belong to a `url` server".into(),
            );
        }
        if s.timeout_seconds == 0 {
            err(format!("{at}.timeoutSeconds"), "must be at least 1".into());
        }
    }
    let mut globs: Vec<(String, &String)> = Vec::new();
    globs.extend(
        c.tools
            .approve
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("tools.approve[{i}]"), g)),
    );
    for (name, a) in &c.agents {
        for (key, list) in [("allow", &a.tools.allow), ("deny", &a.tools.deny)] {
            globs.extend(
                list.iter()
                    .enumerate()
                    .map(|(i, g)| (format!("agents.{name}.tools.{key}[{i}]"), g)),
            );
        }
    }
    for (path, g) in globs {
        if let Err(e) = glob::Pattern::new(g) {
            err(path, format!("`{g}` is not a glob: {e}"));
        }
    }
    if c.tools.approval_timeout_seconds == 0 {
        err(
            "tools.approvalTimeoutSeconds".into(),
            "must be at least 1".into(),
        );
    }
    let web = &c.tools.web;
    if web.timeout_seconds == 0 {
        err(
            "tools.web.timeoutSeconds".into(),
            "must be at least 1".into(),
        );
    }
    if web.max_bytes < 1024 {
        err("tools.web.maxBytes".into(), "must be at least 1024".into());
    }
    if let Some(s) = &web.search {
        if let Some(url) = &s.base_url
            && reqwest::Url::parse(url).is_err()
        {
            err(
                "tools.web.search.baseUrl".into(),
                format!("`{url}` is not a URL"),
            );
        }
        if s.provider == crate::config::SearchProvider::Searxng && s.base_url.is_none() {
            err(
                "tools.web.search.baseUrl".into(),
                "SearXNG needs the `baseUrl` of your instance".into(),
            );
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
