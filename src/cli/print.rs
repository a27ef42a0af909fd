//! Human and `--json` output of listing commands.

use crate::gateway::api::StatusReport;
use crate::store::{AllowedSender, PairingRequest, SessionRow, TaskRow};

/// `telegram (connected), discord (stopped: the bot token was rejected …)`.
pub fn channel_line(s: &StatusReport) -> String {
    if s.channel_health.is_empty() {
        return s.channels.join(", ");
    }
    s.channel_health
        .iter()
        .map(|c| {
            let state = serde_json::to_value(c.health.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            match &c.health.error {
                Some(e) => format!("{} ({state}: {e})", c.name),
                None => format!("{} ({state})", c.name),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn status(s: &StatusReport, url: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let up = s.uptime_secs;
    println!("gateway: up (pid {}, version {})", s.pid, s.version);
    println!("listening: {} (reached at {url})", s.listen);
    println!("control room: {}/", url.trim_end_matches('/'));
    println!("uptime: {}h {}m {}s", up / 3600, (up % 3600) / 60, up % 60);
    println!("channels: {}", channel_line(s));
    println!(
        "agents: {} (coordinator {})",
        s.agents.join(", "),
        s.coordinator
    );
    println!(
        "sessions: {} live · inbox pending: {} · outbox pending: {} · tasks active: {}",
        s.counts.sessions, s.counts.inbox_pending, s.counts.outbox_pending, s.counts.tasks_active
    );
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default()
    };
    println!(
        "cron: {} jobs · next wake-up: {} · last run: {}",
        s.cron.jobs,
        s.cron.next_wake.map_or("none".into(), when),
        s.cron
            .last_run
            .as_ref()
            .map_or("none".into(), |(t, st)| format!("{} ({st})", when(*t)))
    );
    if s.model_problems.is_empty() {
        println!("models: no provider problems");
    }
    for p in &s.model_problems {
        println!(
            "model problem: {}: {} ({} failure{} since {}, last {})",
            p.provider,
            p.error,
            p.failures,
            if p.failures == 1 { "" } else { "s" },
            when(p.since_ms),
            when(p.last_ms)
        );
    }
    if let Some(u) = &s.usage {
        let mut line = format!("usage today: {}", crate::usage::report::describe(&u.today));
        if let Some(d) = u.daily_usd {
            line.push_str(&format!(" · daily budget ${d:.2}"));
        }
        if let Some(m) = u.monthly_usd {
            line.push_str(&format!(
                " · this month {} of ${m:.2}",
                crate::usage::usd(u.month_cost_micros)
            ));
        }
        println!("{line}");
    }
    if !s.instances.is_empty() {
        println!("gateways on this store (this one: {}):", s.instance);
        for i in &s.instances {
            let roles = if i.roles.is_empty() {
                String::new()
            } else {
                format!(" · {}", i.roles.join(", "))
            };
            println!(
                "  {}: {} (pid {}, seen {:.1}s ago) · {} chat{}{roles}",
                i.id,
                if i.alive { "alive" } else { "dead" },
                i.pid.map_or("?".into(), |p| p.to_string()),
                i.silent_ms as f64 / 1000.0,
                i.chats,
                if i.chats == 1 { "" } else { "s" },
            );
        }
    }
    if let Some(h) = &s.heartbeat {
        println!(
            "heartbeat: every {} ({}) · {} → {} · {} · next: {} · last: {}",
            humanize_secs(h.every_secs),
            h.active_hours.as_deref().unwrap_or("all day"),
            h.agent,
            h.to.as_deref().unwrap_or("(nowhere)"),
            if h.running { "running" } else { "idle" },
            h.next_ms.map_or("none".into(), when),
            h.last.as_ref().map_or("none".into(), |r| format!(
                "{} ({})",
                when(r.slot),
                r.status
            ))
        );
    }
    Ok(())
}

/// "30m", "2h", "1h30m".
pub fn humanize_secs(secs: u64) -> String {
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    match (h, m) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

pub fn sessions(rows: &[SessionRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no live sessions");
    }
    for r in rows {
        println!(
            "{:>5}  {:<5} {:<10} {:>4} turns  {}",
            r.id,
            format!("{:?}", r.kind).to_lowercase(),
            r.agent,
            r.turns,
            r.key
        );
    }
    Ok(())
}

pub fn tasks(rows: &[TaskRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no tasks");
    }
    for t in rows {
        let prompt: String = t.prompt.chars().take(60).collect();
        println!(
            "#{:<4} {:<11} {:<10} {:<24} {}",
            t.id,
            t.status.as_str(),
            t.agent,
            t.origin,
            prompt
        );
    }
    Ok(())
}

pub fn pairing(
    pending: &[PairingRequest],
    allowed: &[AllowedSender],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({ "pending": pending, "allowed": allowed });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("pending codes:");
    if pending.is_empty() {
        println!("  (none)");
    }
    let now = crate::store::now_ms();
    for p in pending {
        println!(
            "  {} {}  user {}{}  expires in {} min",
            p.channel,
            p.code,
            p.sender,
            p.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            (p.expires_at - now).max(0) / 60_000
        );
    }
    println!("approved:");
    if allowed.is_empty() {
        println!("  (none)");
    }
    for a in allowed {
        println!(
            "  {} user {}{}",
            a.channel,
            a.sender,
            a.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
