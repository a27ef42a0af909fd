//! Tasks: what workers are doing and did, each with its output, and cancel.

use super::overview::preview;
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
        .tasks_recent(None)
        .await
        .map_err(WebError::internal)?;
    Ok(ctx.page(
        "/tasks",
        "Tasks",
        html! {
            (notice(q.msg.as_deref()))
            @if rows.is_empty() { p.mute { "No task yet. Start one in a chat with /task AGENT WHAT." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Task" } th scope="col" { "Agent" } th scope="col" { "Status" } th scope="col" { "What" } th scope="col" { "From" } th scope="col" { "Started" } th scope="col" { span.skip { "Actions" } } } }
                    tbody { @for t in &rows {
                        tr {
                            td { a href={"/tasks/" (t.id)} { "#" (t.id) } }
                            td { (t.agent) }
                            td { (t.status.as_str()) }
                            td { (preview(&t.prompt)) }
                            td { (t.origin) }
                            td { (ctx.time(t.created_at)) }
                            td { @if t.status.is_active() { (ctx.button(&format!("/tasks/{}/cancel", t.id), "Cancel", "danger")) } }
                        }
                    } }
                } }
            }
        },
    ))
}

pub async fn page(State(s): State<ApiState>, ctx: Ctx, Path(id): Path<i64>) -> Page {
    let t = s
        .coordinator
        .store()
        .task_get(id)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found(format!("No task #{id}.")))?;
    Ok(ctx.page(
        "/tasks",
        &format!("Task #{id}"),
        html! {
            p { (t.agent) " · " strong { (t.status.as_str()) } " · from " (t.origin) " · started " (ctx.time(t.created_at))
                @if let Some(f) = t.finished_at { " · finished " (ctx.time(f)) } }
            @if t.status.is_active() { (ctx.button(&format!("/tasks/{id}/cancel"), "Cancel this task", "danger")) }
            h2 { "Asked" }
            pre { (t.prompt) }
            h2 { "Output" }
            @match &t.result { Some(r) => pre { (r) }, None => p.mute { "Nothing yet." } }
        },
    ))
}

pub async fn cancel(State(s): State<ApiState>, Path(id): Path<i64>) -> Result<Redirect, WebError> {
    let message = s.coordinator.cancel_task(id).await.map_err(WebError::bad)?;
    Ok(back("/tasks", &message))
}
