//! One file a section of the control room: its page, its forms, its streams.

mod access;
mod chat;
mod cron;
mod logs;
mod memory;
mod overview;
mod sessions;
mod tasks;
mod tools;
mod transcript;

use crate::gateway::api::ApiState;
use axum::Router;
use axum::routing::{get, post};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/logout", post(super::auth::logout))
        .route("/chat", get(chat::index))
        .route("/chat/{agent}", get(chat::page).post(chat::send))
        .route("/chat/{agent}/events", get(chat::events))
        .route(
            "/chat/{agent}/upload",
            post(chat::upload).layer(axum::extract::DefaultBodyLimit::max(chat::MAX_UPLOAD)),
        )
        .route("/sessions", get(sessions::index))
        .route("/sessions/{id}", get(sessions::page))
        .route("/sessions/{id}/reset", post(sessions::reset))
        .route("/tasks", get(tasks::index))
        .route("/tasks/{id}", get(tasks::page))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/cron", get(cron::index).post(cron::add))
        .route("/cron/{id}", get(cron::page).post(cron::edit))
        .route("/cron/{id}/{action}", post(cron::act))
        .route("/approvals", get(access::approvals))
        .route("/approvals/{id}/{answer}", post(access::answer))
        .route("/pairing", get(access::pairing))
        .route("/pairing/{action}", post(access::pairing_act))
        .route("/memory", get(memory::index))
        .route("/memory/{agent}", get(memory::agent))
        .route("/memory/{agent}/file", get(memory::file).post(memory::save))
        .route("/tools", get(tools::page))
        .route("/tools/mcp/{name}/test", post(tools::test))
        .route("/usage", get(overview::usage))
        .route("/logs", get(logs::page))
        .route("/logs/events", get(logs::events))
}
