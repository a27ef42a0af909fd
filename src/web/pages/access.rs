//! Who may do what: tool approvals waiting for an answer, and pairing requests from people who
//! wrote to the bot, with the senders already allowed.

use crate::coordinator::ApprovalAnswer;
use crate::gateway::api::ApiState;
use crate::store::ApprovalStatus;
use crate::web::layout::{Ctx, MsgQuery, back, notice};
use crate::web::{Page, WebError};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use maud::html;
use serde::Deserialize;

pub async fn approvals(State(s): State<ApiState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Page {
    let all = s
        .coordinator
        .store()
        .approvals_list(false)
        .await
        .map_err(WebError::internal)?;
    let (pending, done): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|a| a.status == ApprovalStatus::Pending);
    Ok(ctx.page(
        "/approvals",
        "Approvals",
        html! {
            (notice(q.msg.as_deref()))
            h2 { "Waiting" }
            @if pending.is_empty() { p.mute { "Nothing is waiting for an answer." } }
            @for a in &pending {
                section.card aria-label={"Approval #" (a.id)} {
                    p { strong { (a.agent) } " wants to run " code { (a.tool) } " for " (a.target.as_deref().unwrap_or("a session")) " · asked " (ctx.time(a.created_at)) }
                    pre { (a.args) }
                    div.row {
                        (ctx.button(&format!("/approvals/{}/approve", a.id), "Approve", "primary"))
                        (ctx.button(&format!("/approvals/{}/approve-session", a.id), "Approve for this session", ""))
                        (ctx.button(&format!("/approvals/{}/deny", a.id), "Deny", "danger"))
                    }
                }
            }
            h2 { "Decided" }
            @if done.is_empty() { p.mute { "None yet." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "#" } th scope="col" { "Tool" } th scope="col" { "Agent" } th scope="col" { "Answer" } th scope="col" { "By" } th scope="col" { "Asked" } } }
                    tbody { @for a in done.iter().take(100) {
                        tr { td { (a.id) } td { code { (a.tool) } } td { (a.agent) } td { (a.status.as_str()) } td { (a.decided_by.as_deref().unwrap_or("—")) } td { (ctx.time(a.created_at)) } }
                    } }
                } }
            }
        },
    ))
}

pub async fn answer(
    State(s): State<ApiState>,
    Path((id, answer)): Path<(i64, String)>,
) -> Result<Redirect, WebError> {
    let answer = match answer.as_str() {
        "approve" => ApprovalAnswer::Approve,
        "approve-session" => ApprovalAnswer::ApproveSession,
        "deny" => ApprovalAnswer::Deny,
        other => {
            return Err(WebError::bad(format!(
                "`{other}` is not approve, approve-session or deny."
            )));
        }
    };
    let message = s
        .coordinator
        .decide_approval(id, answer, "the control room")
        .await
        .map_err(WebError::bad)?;
    Ok(back("/approvals", &message))
}

pub async fn pairing(State(s): State<ApiState>, ctx: Ctx, Query(q): Query<MsgQuery>) -> Page {
    let (pending, allowed) = s
        .coordinator
        .store()
        .pairing_list()
        .await
        .map_err(WebError::internal)?;
    Ok(ctx.page(
        "/pairing",
        "Pairing",
        html! {
            (notice(q.msg.as_deref()))
            h2 { "Requests" }
            @if pending.is_empty() { p.mute { "No one is waiting. People who write to the bot get a code, and show up here." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Channel" } th scope="col" { "Who" } th scope="col" { "Code" } th scope="col" { "Expires" } th scope="col" { span.skip { "Actions" } } } }
                    tbody { @for p in &pending {
                        tr data-code=(p.code) {
                            td { (p.channel) }
                            td { (p.name.as_deref().unwrap_or("")) " " small.mute { (p.sender) } }
                            td { code { (p.code) } }
                            td { (ctx.time(p.expires_at)) }
                            td.row {
                                form.inline method="post" action="/pairing/approve" {
                                    (ctx.csrf_field())
                                    input type="hidden" name="channel" value=(p.channel);
                                    input type="hidden" name="code" value=(p.code);
                                    button.primary type="submit" aria-label={"Approve " (p.code)} { "Approve" }
                                }
                                form.inline method="post" action="/pairing/deny" {
                                    (ctx.csrf_field())
                                    input type="hidden" name="channel" value=(p.channel);
                                    input type="hidden" name="code" value=(p.code);
                                    button.danger type="submit" aria-label={"Deny " (p.code)} { "Deny" }
                                }
                            }
                        }
                    } }
                } }
            }
            h2 { "Allowed" }
            @if allowed.is_empty() { p.mute { "No one approved yet (allowFrom in the config also admits people)." } }
            @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Channel" } th scope="col" { "Who" } th scope="col" { "Since" } th scope="col" { span.skip { "Actions" } } } }
                    tbody { @for a in &allowed {
                        tr {
                            td { (a.channel) }
                            td { (a.name.as_deref().unwrap_or("")) " " small.mute { (a.sender) } }
                            td { (ctx.time(a.approved_at)) }
                            td {
                                form.inline method="post" action="/pairing/revoke" {
                                    (ctx.csrf_field())
                                    input type="hidden" name="channel" value=(a.channel);
                                    input type="hidden" name="sender" value=(a.sender);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    } }
                } }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct PairingForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    sender: String,
}

pub async fn pairing_act(
    State(s): State<ApiState>,
    Path(action): Path<String>,
    Form(f): Form<PairingForm>,
) -> Result<Redirect, WebError> {
    let store = s.coordinator.store();
    let msg = match action.as_str() {
        "approve" => match store
            .pairing_approve(&f.channel, &f.code)
            .await
            .map_err(WebError::internal)?
        {
            Some(a) => format!(
                "Approved {} on {}: they can talk to the agents now.",
                a.name.as_deref().unwrap_or(&a.sender),
                a.channel
            ),
            None => {
                return Err(WebError::bad(format!(
                    "No live pairing code {} on {} (codes expire after an hour).",
                    f.code, f.channel
                )));
            }
        },
        "deny" => {
            if !store
                .pairing_deny(&f.channel, &f.code)
                .await
                .map_err(WebError::internal)?
            {
                return Err(WebError::bad(format!(
                    "No pairing code {} on {}.",
                    f.code, f.channel
                )));
            }
            format!("Denied code {}.", f.code)
        }
        "revoke" => {
            if !store
                .pairing_revoke(&f.channel, &f.sender)
                .await
                .map_err(WebError::internal)?
            {
                return Err(WebError::bad(format!(
                    "{} is not allowed on {}.",
                    f.sender, f.channel
                )));
            }
            format!("Revoked {} on {}.", f.sender, f.channel)
        }
        other => {
            return Err(WebError::bad(format!(
                "`{other}` is not approve, deny or revoke."
            )));
        }
    };
    Ok(back("/pairing", &msg))
}
