//! The overview (is everything connected, what is queued, what failed, what is next, what did
//! today cost) and the usage page.

use crate::gateway::api::{ApiState, status_report};
use crate::store::UsageBy;
use crate::usage::{report, usd};
use crate::web::Page;
use crate::web::layout::Ctx;
use axum::extract::State;
use maud::html;
use switchboard_channel::ChannelState;

fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

pub async fn page(State(s): State<ApiState>, ctx: Ctx) -> Page {
    let r = status_report(&s)
        .await
        .map_err(crate::web::WebError::internal)?;
    let store = s.coordinator.store();
    let running = store
        .tasks_active()
        .await
        .map_err(crate::web::WebError::internal)?;
    let mut next = store
        .cron_jobs(None)
        .await
        .map_err(crate::web::WebError::internal)?;
    next.retain(|j| j.enabled && j.next_run.is_some());
    next.sort_by_key(|j| j.next_run);
    next.truncate(5);
    let body = html! {
        div.grid {
            section.card aria-labelledby="h-channels" {
                h2 #h-channels { "Channels" }
                table {
                    thead { tr { th scope="col" { "Channel" } th scope="col" { "State" } th scope="col" { "Since" } } }
                    tbody {
                        @for c in r.channel_health.iter().filter(|c| c.name != "local" && c.name != "web") {
                            @let (class, word) = match c.health.state {
                                ChannelState::Connected => ("ok", "connected"),
                                ChannelState::Starting => ("warn", "starting"),
                                ChannelState::Retrying => ("warn", "retrying"),
                                ChannelState::Stopped => ("bad", "stopped"),
                            };
                            tr data-channel=(c.name) {
                                td { (c.name) }
                                td {
                                    span class=(class) data-state=(word) { (word) }
                                    @if let Some(e) = &c.health.error { br; small.mute { (e) } }
                                }
                                td { (ctx.time(c.health.since_ms)) }
                            }
                        }
                    }
                }
                @if r.channel_health.iter().all(|c| c.name == "local" || c.name == "web") {
                    p.mute { "No chat platform configured (set channels.telegram.token or channels.discord.token)." }
                }
            }
            section.card aria-labelledby="h-gateway" {
                h2 #h-gateway { "Gateway" }
                p { "Up " (uptime(r.uptime_secs)) " · version " (r.version) " · pid " (r.pid) }
                p { "Agents: " (r.agents.join(", ")) " (coordinator " (r.coordinator) ")" }
                p { "Inbox waiting: " strong { (r.counts.inbox_pending) } " · outbox waiting: " strong { (r.counts.outbox_pending) } }
                p { "Open sessions: " (r.counts.sessions) " · running tasks: " (r.counts.tasks_active) }
            }
            section.card aria-labelledby="h-models" {
                h2 #h-models { "Model providers" }
                @if r.model_problems.is_empty() {
                    p.ok { "No provider is failing." }
                } @else {
                    ul {
                        @for p in &r.model_problems {
                            li.bad { strong { (p.provider) } " — " (p.cause) " (" (p.failures) "×): " (p.error) }
                        }
                    }
                }
            }
            section.card aria-labelledby="h-usage" {
                h2 #h-usage { "Today" }
                @if let Some(u) = &r.usage {
                    p { (report::describe(&u.today)) }
                    p.mute {
                        "This month " (usd(u.month_cost_micros))
                        @if let Some(d) = u.daily_usd { " · daily budget $" (format!("{d:.2}")) }
                        @if let Some(m) = u.monthly_usd { " · monthly budget $" (format!("{m:.2}")) }
                    }
                }
                p { a href="/usage" { "Usage by agent and model" } }
            }
        }
        section aria-labelledby="h-tasks" {
            h2 #h-tasks { "Running tasks" }
            @if running.is_empty() { p.mute { "None." } }
            @else {
                ul { @for t in &running { li { a href={"/tasks/" (t.id)} { "#" (t.id) } " " (t.agent) ": " (preview(&t.prompt)) } } }
            }
        }
        section aria-labelledby="h-cron" {
            h2 #h-cron { "Next cron runs" }
            @if next.is_empty() { p.mute { "No cron job is scheduled." } }
            @else {
                ul { @for j in &next { li { (ctx.time_opt(j.next_run)) " — " a href={"/cron/" (j.id)} { (j.name) } " → " (j.target.as_deref().unwrap_or("(no target)")) } } }
            }
            @if let Some((at, status)) = &r.cron.last_run { p.mute { "Last run " (ctx.time(*at)) ": " (status) } }
            @if let Some(h) = &r.heartbeat {
                p.mute {
                    "Heartbeat every " (h.every_secs / 60) " min"
                    @if let Some(n) = h.next_ms { ", next " (ctx.time(n)) }
                    @if let Some(l) = &h.last { ", last " (l.status) }
                }
            }
        }
    };
    Ok(ctx.page_with("/", "Overview", Some(5), body))
}

/// A long text's first line, shortened.
pub fn preview(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(100).collect();
    if out.len() < line.len() || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

pub async fn usage(State(s): State<ApiState>, ctx: Ctx) -> Page {
    let c = &s.coordinator;
    let now = c.clock().now();
    let until = now.timestamp_millis() + 1;
    let mut sections = Vec::new();
    for (label, spec) in [("Today", "today"), ("Last 30 days", "30d")] {
        let since = report::since(spec, now, ctx.tz).map_err(crate::web::WebError::internal)?;
        let total = c
            .store()
            .usage_total(since, until, None)
            .await
            .map_err(crate::web::WebError::internal)?;
        let mut by = Vec::new();
        for (name, b) in [
            ("Agent", UsageBy::Agent),
            ("Model", UsageBy::Model),
            ("Chat", UsageBy::Chat),
        ] {
            by.push((
                name,
                c.store()
                    .usage_report(since, until, b)
                    .await
                    .map_err(crate::web::WebError::internal)?,
            ));
        }
        sections.push((label, total, by));
    }
    Ok(ctx.page(
        "/usage",
        "Usage",
        html! {
            @for (label, total, by) in &sections {
                h2 { (label) }
                p { (report::describe(total)) }
                @for (name, lines) in by {
                    @if !lines.is_empty() {
                        div.scroll {
                            table {
                                caption.mute { "By " (name.to_lowercase()) }
                                thead { tr { th scope="col" { (name) } th scope="col" { "Calls" } th scope="col" { "Tokens in / out" } th scope="col" { "Cost" } } }
                                tbody {
                                    @for l in lines {
                                        tr { td { (l.key) } td { (l.calls) } td { (report::tokens(l.input)) " / " (report::tokens(l.output)) } td { (usd(l.cost_micros)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
