//! Chat with any agent from the browser: chat `web:AGENT`, its own main session. The message is
//! accepted like any platform's (stored first); the reply streams back over server-sent events
//! as it is written, and later messages to the chat (a task's result) arrive the same way.

use super::transcript;
use crate::gateway::api::ApiState;
use crate::store::SessionKind;
use crate::web::layout::Ctx;
use crate::web::{Page, WebError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use futures_util::stream::Stream;
use maud::html;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use switchboard_channel::{Inbound, InboundSink, Target};

fn check_agent(s: &ApiState, agent: &str) -> Result<(), WebError> {
    if s.coordinator.agents().exists(agent) {
        Ok(())
    } else {
        Err(WebError::not_found(format!(
            "No agent named `{agent}` (agents: {}).",
            s.coordinator.agents().names().join(", ")
        )))
    }
}

pub async fn index(State(s): State<ApiState>, ctx: Ctx) -> Page {
    let c = &s.coordinator;
    Ok(ctx.page(
        "/chat",
        "Chat",
        html! {
            p { "Talk to an agent here; each has its own conversation (chat " code { "web:NAME" } ")." }
            ul {
                @for a in c.agents().names() {
                    li { a href={"/chat/" (a)} { (a) } @if a == c.config().coordinator() { " (coordinator)" } }
                }
            }
        },
    ))
}

pub async fn page(State(s): State<ApiState>, ctx: Ctx, Path(agent): Path<String>) -> Page {
    check_agent(&s, &agent)?;
    let store = s.coordinator.store();
    let target = format!("web:{agent}");
    let session = store
        .sessions_live()
        .await
        .map_err(WebError::internal)?
        .into_iter()
        .find(|r| {
            r.kind == SessionKind::Main && r.agent == agent && r.target.as_deref() == Some(&target)
        });
    let turns = match &session {
        Some(r) => store.turns(r.id).await.map_err(WebError::internal)?,
        None => Vec::new(),
    };
    let after = s.web.latest_seq();
    Ok(ctx.page(
        "/chat",
        &format!("Chat with {agent}"),
        html! {
            div.chat #chat-log data-agent=(agent) data-after=(after) aria-live="polite" aria-label="Conversation" {
                (transcript::render(&turns))
            }
            form #chat-form method="post" action={"/chat/" (agent)} {
                (ctx.csrf_field())
                label for="chat-text" { "Message" }
                textarea #chat-text name="text" rows="3" placeholder="Write a message; Enter sends, Shift+Enter starts a new line" {}
                label for="chat-file" { "Attach a file or a voice note " span.mute { "(optional; needs JavaScript)" } }
                input #chat-file type="file" name="file";
                div.row {
                    button.primary type="submit" { "Send" }
                    span #chat-status role="status" {}
                    @if let Some(r) = &session { a href={"/sessions/" (r.id)} { "Session #" (r.id) } }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    text: String,
}

/// A message from the page to `agent`'s web chat (which is pinned to that agent), and its id.
async fn message(s: &ApiState, agent: &str, text: &str) -> Result<(String, Inbound), WebError> {
    let target = Target::new("web", agent);
    let store = s.coordinator.store();
    if store
        .chat_agent(&target.to_string())
        .await
        .map_err(WebError::internal)?
        .as_deref()
        != Some(agent)
    {
        store
            .set_chat_agent(&target.to_string(), agent)
            .await
            .map_err(WebError::internal)?;
    }
    let id = crate::channels::local::new_message_id();
    let inbound = Inbound::direct(target, "web", &id, text);
    Ok((id, inbound))
}

pub async fn send(
    State(s): State<ApiState>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    Form(f): Form<SendForm>,
) -> Result<Response, WebError> {
    check_agent(&s, &agent)?;
    if f.text.trim().is_empty() {
        return Err(WebError::bad("The message is empty."));
    }
    let (id, inbound) = message(&s, &agent, &f.text).await?;
    s.coordinator
        .accept(inbound)
        .await
        .map_err(WebError::internal)?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    Ok(if wants_json {
        Json(serde_json::json!({ "id": id })).into_response()
    } else {
        // Without the script: back to the page, where the reply shows once it is written.
        Redirect::to(&format!("/chat/{agent}")).into_response()
    })
}

/// The largest upload (Telegram's bots take files up to 20 MB; the intake's cap is the same).
pub const MAX_UPLOAD: usize = 21 << 20;

/// A message with a file from the page (multipart: `text`, `file`): the file is stored first,
/// then the message is accepted with it attached, as a platform's would be. An audio file is a
/// voice note (transcribed), an image is shown to vision models, anything else is a document.
pub async fn upload(
    State(s): State<ApiState>,
    Path(agent): Path<String>,
    mut form: axum::extract::Multipart,
) -> Result<Response, WebError> {
    check_agent(&s, &agent)?;
    let mut text = String::new();
    let mut file: Option<(String, Option<String>, bytes::Bytes)> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| WebError::bad(format!("The upload could not be read: {e}")))?
    {
        match field.name() {
            Some("text") => {
                text = field
                    .text()
                    .await
                    .map_err(|e| WebError::bad(format!("The upload could not be read: {e}")))?;
            }
            Some("file") => {
                let name = field.file_name().unwrap_or("upload").to_string();
                let mime = field.content_type().map(str::to_string);
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| WebError::bad(format!("The upload could not be read: {e}")))?;
                if !data.is_empty() {
                    file = Some((name, mime, data));
                }
            }
            _ => {}
        }
    }
    let Some((name, mime, data)) = file else {
        return Err(WebError::bad("No file was attached."));
    };
    let mime = mime
        .filter(|m| m != "application/octet-stream")
        .or_else(|| mime_guess::from_path(&name).first().map(|m| m.to_string()));
    let file_ref = s
        .web
        .store_upload(&data)
        .map_err(|e| WebError::internal(format!("cannot store the upload: {e}")))?;
    let (id, mut inbound) = message(&s, &agent, &text).await?;
    let size = Some(data.len() as u64);
    if mime.as_deref().is_some_and(|m| m.starts_with("audio/")) {
        inbound.audio = Some(switchboard_channel::AudioAttachment {
            file_ref,
            mime_type: mime,
            size_bytes: size,
            duration_secs: None,
        });
    } else {
        let kind = if mime.as_deref().is_some_and(|m| m.starts_with("image/")) {
            switchboard_channel::FileKind::Image
        } else {
            switchboard_channel::FileKind::Document
        };
        inbound.files.push(switchboard_channel::FileAttachment {
            file_ref,
            kind,
            name: Some(name),
            mime_type: mime,
            size_bytes: size,
        });
    }
    s.coordinator
        .accept(inbound)
        .await
        .map_err(WebError::internal)?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after: u64,
}

/// The chat's live stream: `draft` (a reply so far: `{reply_to, text}`) and `messages` (the
/// messages delivered to the chat after `after`, each `{seq, text, reply_to}`).
pub async fn events(
    State(s): State<ApiState>,
    Path(agent): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    check_agent(&s, &agent)?;
    let drafts = s.web.drafts();
    let open = s.activity.stream();
    let stream = futures_util::stream::unfold(
        (s, agent, q.after, drafts, open),
        |(s, chat, mut after, mut drafts, open)| async move {
            loop {
                tokio::select! {
                    _ = s.shutdown.cancelled() => return None,
                    msgs = s.web.wait(&chat, after, Duration::from_secs(30)) => {
                        if msgs.is_empty() { continue; }
                        after = msgs.iter().map(|m| m.seq).max().unwrap_or(after);
                        let data = s.redactor.redact(&serde_json::to_string(&msgs).unwrap_or_default()).into_owned();
                        let ev = Event::default().event("messages").id(after.to_string()).data(data);
                        return Some((Ok(ev), (s, chat, after, drafts, open)));
                    }
                    d = drafts.recv() => match d {
                        Ok(d) if d.chat == chat => {
                            let json = serde_json::json!({ "reply_to": d.reply_to, "text": d.text }).to_string();
                            let ev = Event::default().event("draft").data(s.redactor.redact(&json));
                            return Some((Ok(ev), (s, chat, after, drafts, open)));
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
