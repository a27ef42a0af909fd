//! `switchboard usage` and `switchboard heartbeat`: read from the database, so they work with the
//! gateway down.

use super::UsageError;
use crate::config::Config;
use crate::store::{Store, UsageBy};
use crate::usage::report;

pub async fn usage(c: &Config, since: Option<&str>, by: &str, json: bool) -> anyhow::Result<()> {
    let by = match by {
        "agent" => UsageBy::Agent,
        "chat" => UsageBy::Chat,
        "model" => UsageBy::Model,
        other => {
            return Err(UsageError(format!("--by {other}: expected agent, chat or model")).into());
        }
    };
    let tz = c.tz();
    let now = crate::cron::clock::from_env().now();
    let spec = since.unwrap_or("today");
    let from = report::since(spec, now, tz).map_err(UsageError)?;
    let until = now.timestamp_millis() + 1;
    let store = Store::for_config(c)?;
    let lines = store.usage_report(from, until, by).await?;
    let total = store.usage_total(from, until, None).await?;
    if json {
        let v = serde_json::json!({
            "since": chrono::DateTime::from_timestamp_millis(from).map(|t| t.to_rfc3339()),
            "by": format!("{by:?}").to_lowercase(),
            "lines": lines,
            "total": total,
            "budgets": c.budgets,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let label = chrono::DateTime::from_timestamp_millis(from)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    if lines.is_empty() {
        println!("no model calls since {label}");
        return Ok(());
    }
    let width = lines.iter().map(|l| l.key.len()).max().unwrap_or(0);
    for l in &lines {
        println!("{:width$}  {}", l.key, report::describe(l));
    }
    println!("{:width$}  {}", "total", report::describe(&total));
    println!("(since {label}, {})", tz.name());
    if let Some(d) = c.budgets.daily_usd {
        println!("daily budget: ${d:.2}");
    }
    if let Some(m) = c.budgets.monthly_usd {
        println!("monthly budget: ${m:.2}");
    }
    Ok(())
}

pub async fn heartbeat(c: &Config, json: bool) -> anyhow::Result<()> {
    let store = Store::for_config(c)?;
    let runs = store.heartbeat_runs(20).await?;
    let plan = crate::heartbeat::Plan::from_config(c);
    let now = crate::cron::clock::from_env().now();
    let next = plan.as_ref().and_then(|p| p.next_active_after(now));
    if json {
        let v = serde_json::json!({
            "configured": plan.is_some(),
            "every_secs": plan.as_ref().map(|p| p.every.as_secs()),
            "active_hours": c.heartbeat.as_ref().and_then(|h| h.active_hours.clone()),
            "agent": plan.as_ref().map(|p| p.agent.clone()),
            "to": plan.as_ref().and_then(|p| p.to.clone()),
            "next_ms": next,
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let tz = c.tz();
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    match &plan {
        Some(p) => println!(
            "heartbeat: every {} ({}) · {} → {} · next {}",
            super::print::humanize_secs(p.every.as_secs()),
            c.heartbeat
                .as_ref()
                .and_then(|h| h.active_hours.as_deref())
                .unwrap_or("all day"),
            p.agent,
            p.to.as_deref()
                .unwrap_or("(nowhere: set heartbeat.to or owner)"),
            next.map_or("none".into(), when)
        ),
        None => println!("heartbeat: off (set `heartbeat.every` in the config)"),
    }
    for r in &runs {
        let detail = r
            .error
            .as_deref()
            .or(r.reply.as_deref())
            .map(|t| t.chars().take(100).collect::<String>())
            .unwrap_or_default();
        println!(
            "  {} {:11} {}",
            when(r.slot),
            r.status,
            detail.replace('\n', " ")
        );
    }
    Ok(())
}
