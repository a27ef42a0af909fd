//! Sessions: the open ones, each with its transcript, and a reset that ends one (the chat's next
//! message starts fresh).

use super::transcript;
use crate::gateway::api::ApiState;
use crate::web::layout::{Ctx, MsgQuery, back, notice};
use crate::web::{Page, WebError};
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use maud::html;

pub async fn index(State(s): State<ApiState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Page {
    let rows = s
        .coordinator
        .store()
        .sessions_live()
        .await
        .map_err(WebError::internal)?;
    Ok(ctx.page(
        "/sessions",
        "Sessions",
        html! {
            (notice(q.msg.as_deref()))
            @if rows.is_empty() { p.mute { "No open session." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Session" } th scope="col" { "Agent" } th scope="col" { "Chat" } th scope="col" { "Kind" } th scope="col" { "Turns" } th scope="col" { "Started" } } }
                    tbody { @for r in &rows {
                        tr {
                            td { a href={"/sessions/" (r.id)} { "#" (r.id) } }
                            td { (r.agent) }
                            td { (r.target.as_deref().unwrap_or("—")) @if let Some(t) = &r.thread { " (thread " (t) ")" } }
                            td { (format!("{:?}", r.kind).to_lowercase()) }
                            td { (r.turns) }
                            td { (ctx.time(r.created_at)) }
                        }
                    } }
                } }
            }
        },
    ))
}

pub async fn page(State(s): State<ApiState>, ctx: Ctx, Path(id): Path<i64>) -> Page {
    let store = s.coordinator.store();
    let row = store
        .session_get(id)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found(format!("No session #{id}.")))?;
    let turns = store.turns(id).await.map_err(WebError::internal)?;
    Ok(ctx.page(
        "/sessions",
        &format!("Session #{id}"),
        html! {
            p { (row.agent) " · " (row.target.as_deref().unwrap_or("no chat")) " · started " (ctx.time(row.created_at)) " · " (row.turns) " turns" }
            (ctx.button(&format!("/sessions/{id}/reset"), "Reset this session", "danger"))
            @if let Some(sum) = &row.summary {
                details { summary { "Summary of older turns" } pre { (sum) } }
            }
            h2 { "Transcript" }
            div.chat { (transcript::render(&turns)) }
        },
    ))
}

pub async fn reset(State(s): State<ApiState>, Path(id): Path<i64>) -> Result<Redirect, WebError> {
    let store = s.coordinator.store();
    if store
        .session_get(id)
        .await
        .map_err(WebError::internal)?
        .is_none()
    {
        return Err(WebError::not_found(format!("No session #{id}.")));
    }
    store.session_end(id).await.map_err(WebError::internal)?;
    Ok(back(
        "/sessions",
        &format!("Session #{id} ended; the chat's next message starts fresh."),
    ))
}
