//! Skills and MCP servers: what the agents can use, and each server's state.

use crate::gateway::api::ApiState;
use crate::tools::mcp::Status;
use crate::web::layout::{Ctx, MsgQuery, back, notice};
use crate::web::{Page, WebError};
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use maud::html;

pub async fn page(State(s): State<ApiState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Page {
    let (skills, skipped) = crate::tools::skills::catalogue(s.coordinator.config());
    let servers = s.coordinator.agents().tools().mcp().info();
    Ok(ctx.page(
        "/tools",
        "Skills & MCP servers",
        html! {
            (notice(q.msg.as_deref()))
            h2 { "MCP servers" }
            @if servers.is_empty() { p.mute { "None configured (mcp.servers in the config)." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Server" } th scope="col" { "State" } th scope="col" { "Tools" } th scope="col" { span.skip { "Actions" } } } }
                    tbody { @for m in &servers {
                        @let class = match m.status { Status::Ready => "ok", Status::Starting | Status::Restarting => "warn", _ => "bad" };
                        tr {
                            td { (m.name) " " small.mute { (m.transport) } }
                            td {
                                span class=(class) { (format!("{:?}", m.status).to_lowercase()) }
                                @if m.restarts > 0 { " · " (m.restarts) " restarts" }
                                @if let Some(ms) = m.start_ms { " · started in " (ms) " ms" }
                                @if let Some(e) = &m.last_error { br; small.bad { (e) } }
                            }
                            td { @if m.tools.is_empty() { span.mute { "—" } } @else { details { summary { (m.tools.len()) " tools" } ul { @for t in &m.tools { li { code { (t) } } } } } } }
                            td { (ctx.button(&format!("/tools/mcp/{}/test", crate::web::auth::urlencode(&m.name)), "List tools again", "")) }
                        }
                    } }
                } }
            }
            h2 { "Skills" }
            @if skills.is_empty() { p.mute { "No skill installed (a folder with a SKILL.md in <stateDir>/skills, a workspace's skills/ or skills.dirs)." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Skill" } th scope="col" { "What it does" } th scope="col" { "Agents" } } }
                    tbody { @for k in &skills {
                        tr { td { strong { (k.name) } br; small.mute { (k.dir) } } td { (k.description) } td { (k.agents.join(", ")) } }
                    } }
                } }
            }
            @if !skipped.is_empty() {
                h2 { "Skipped" }
                ul { @for b in &skipped { li { code { (b.file.display().to_string()) } ": " (b.reason) } } }
            }
        },
    ))
}

pub async fn test(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Redirect, WebError> {
    let mcp = s.coordinator.agents().tools().mcp().clone();
    let info = mcp.test(&name).await.map_err(WebError::bad)?;
    Ok(back(
        "/tools",
        &format!("{}: {} tools listed.", info.name, info.tools.len()),
    ))
}
