//! The gateway's HTTP API (axum). The CLI is its main client; the request and response types
//! here are shared with `client.rs` so the two cannot drift apart.
//!
//! Every endpoint but `/health` requires `Authorization: Bearer <gateway.token>` when a token is
//! configured.

use crate::channels::local::{LocalChannel, LocalMessage};
use crate::coordinator::Coordinator;
use crate::store::{Counts, CronHealth, SessionRow, TaskRow};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::{Inbound, InboundSink, Target};

#[derive(Clone)]
pub struct ApiState {
    pub coordinator: Coordinator,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub local: Arc<LocalChannel>,
    pub token: Option<String>,
    pub listen: String,
    pub heartbeat: Option<(crate::heartbeat::Plan, Arc<crate::heartbeat::State>)>,
    /// The control room's chats (`web:NAME`).
    pub web: Arc<crate::channels::web::WebChannel>,
    /// The control room's logins.
    pub logins: Arc<crate::web::auth::Logins>,
    /// Masks secrets in every response (the log redactor, with this config's secrets).
    pub redactor: Arc<crate::logging::redact::Redactor>,
    /// When the control room was last used (its pages are given back once it is quiet).
    pub activity: Arc<crate::web::activity::Activity>,
    /// The control room's routes, built on its first request.
    pub pages: Arc<std::sync::OnceLock<Router>>,
    /// Telegram's webhook path and receiver, in webhook mode.
    pub telegram_webhook: Option<(String, Arc<switchboard_telegram::Webhook>)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub pid: u32,
    pub listen: String,
    pub uptime_secs: u64,
    pub channels: Vec<String>,
    /// Each channel's live state: connected, retrying (why), stopped (what to fix).
    #[serde(default)]
    pub channel_health: Vec<crate::channels::ChannelHealth>,
    pub agents: Vec<String>,
    pub coordinator: String,
    pub counts: Counts,
    pub cron: CronHealth,
    /// Providers failing right now, and why (empty when all is well).
    #[serde(default)]
    pub model_problems: Vec<crate::providers::Problem>,
    /// Today's model usage and the budgets.
    #[serde(default)]
    pub usage: Option<UsageStatus>,
    /// The heartbeat, when one is configured.
    #[serde(default)]
    pub heartbeat: Option<HeartbeatStatus>,
    /// This gateway's instance id, and every gateway sharing its store with what each holds
    /// (empty on SQLite, where there is one).
    #[serde(default)]
    pub instance: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<crate::store::InstanceRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageStatus {
    pub today: crate::store::UsageLine,
    pub month_cost_micros: i64,
    #[serde(default)]
    pub daily_usd: Option<f64>,
    #[serde(default)]
    pub monthly_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatStatus {
    pub every_secs: u64,
    #[serde(default)]
    pub active_hours: Option<String>,
    pub agent: String,
    #[serde(default)]
    pub to: Option<String>,
    /// The next slot the scheduler will run (ms since the epoch).
    #[serde(default)]
    pub next_ms: Option<i64>,
    pub running: bool,
    #[serde(default)]
    pub last: Option<crate::store::HeartbeatRun>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The local chat's name (`local:NAME`).
    pub chat: String,
    pub text: String,
    /// Switch this chat to that agent first.
    #[serde(default)]
    pub agent: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChatResponse {
    pub reply: String,
    /// Sequence number of the reply; poll `/v1/local/{chat}/messages?after=` from here.
    pub seq: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PollQuery {
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub wait: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SendRequest {
    pub to: String,
    #[serde(default)]
    pub text: String,
    /// An absolute path on the gateway's machine (`send --file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, Default)]
pub struct ResetRequest {
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    pub message: String,
}

/// An API error: a status and a message the CLI prints as is.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The API, the health check and the control room, behind [`crate::web::layer`].
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/chat", post(chat))
        .route("/v1/local/{chat}/messages", get(poll))
        .route("/v1/send", post(send))
        .route("/v1/sessions", get(sessions))
        .route("/v1/sessions/reset", post(reset_sessions))
        .route("/v1/tasks", get(tasks))
        .route("/v1/tasks/{id}/cancel", post(cancel_task))
        .route("/v1/cron/{id}/run", post(cron_run))
        .route("/v1/cron/changed", post(cron_changed))
        .route("/v1/approvals", get(approvals_list))
        .route("/v1/approvals/{id}/{answer}", post(approvals_answer))
        .route("/v1/mcp", get(mcp_list))
        .route("/v1/mcp/{name}/test", post(mcp_test))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth));
    let mut app = Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .merge(api);
    if let Some((path, _)) = &state.telegram_webhook {
        app = app.route(path, post(telegram_webhook));
    }
    let app = app.fallback(crate::web::serve).with_state(state.clone());
    crate::web::layer(app, state)
}

async fn auth(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let bearer = given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !bearer && !browser_allowed(&s, &req) {
            return ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong gateway token (gateway.token)".into(),
            )
            .into_response();
        }
    }
    next.run(req).await
}

use crate::web::auth::constant_time_eq;

/// Telegram's webhook: answered 200 only once the update is stored (Telegram retries anything
/// else), 401 for a missing or wrong secret.
async fn telegram_webhook(
    State(s): State<ApiState>,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> StatusCode {
    use switchboard_telegram::WebhookOutcome;
    let Some((_, hook)) = &s.telegram_webhook else {
        return StatusCode::NOT_FOUND;
    };
    let secret = headers
        .get(switchboard_telegram::WEBHOOK_SECRET_HEADER)
        .map(|v| v.as_bytes());
    match hook.receive(secret, &body).await {
        WebhookOutcome::Stored | WebhookOutcome::Malformed => StatusCode::OK,
        WebhookOutcome::Unauthorized => StatusCode::UNAUTHORIZED,
        WebhookOutcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The control room's pages may call the API with their login cookie; a change also needs the
/// login's CSRF token in `X-CSRF-Token` and our own origin.
fn browser_allowed(s: &ApiState, req: &Request) -> bool {
    let Some(csrf) = crate::web::auth::login_csrf(s, req.headers()) else {
        return false;
    };
    if matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return true;
    }
    crate::web::auth::same_origin(req.headers())
        && req
            .headers()
            .get(crate::web::auth::CSRF_HEADER)
            .is_some_and(|v| constant_time_eq(v.as_bytes(), csrf.as_bytes()))
}

async fn status(State(s): State<ApiState>) -> Result<Json<StatusReport>, ApiError> {
    Ok(Json(status_report(&s).await.map_err(internal)?))
}

/// What `gateway status` and the control room's overview show.
pub async fn status_report(s: &ApiState) -> crate::store::Result<StatusReport> {
    let c = &s.coordinator;
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        listen: s.listen.clone(),
        uptime_secs: c.uptime().as_secs(),
        channels: c.channels().names(),
        channel_health: c.channels().health(),
        agents: c.agents().names().iter().map(|s| s.to_string()).collect(),
        coordinator: c.config().coordinator().to_string(),
        counts: c.store().counts().await?,
        cron: c.store().cron_health().await?,
        model_problems: c.agents().models().problems(),
        usage: Some(usage_status(c).await?),
        heartbeat: match &s.heartbeat {
            Some((plan, state)) => Some(HeartbeatStatus {
                every_secs: plan.every.as_secs(),
                active_hours: c
                    .config()
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.active_hours.clone()),
                agent: plan.agent.clone(),
                to: plan.to.clone(),
                next_ms: state.next_ms(),
                running: state.running(),
                last: c.store().heartbeat_runs(1).await?.into_iter().next(),
            }),
            None => None,
        },
        instance: c.cluster().me().to_string(),
        instances: c.cluster().instances().await?,
    })
}

async fn usage_status(c: &Coordinator) -> crate::store::Result<UsageStatus> {
    let tz = c.config().tz();
    let now = c.clock().now();
    let since = crate::usage::day_start(tz, now.with_timezone(&tz).date_naive());
    let today = c
        .store()
        .usage_total(since, now.timestamp_millis() + 1, None)
        .await?;
    let (_, month) = c.ledger().spent().await;
    let b = c.ledger().budgets();
    Ok(UsageStatus {
        today,
        month_cost_micros: month,
        daily_usd: b.daily_usd,
        monthly_usd: b.monthly_usd,
    })
}

/// Submits a message to a local chat and waits for its reply.
async fn chat(
    State(s): State<ApiState>,
    Json(req): Json<ChatRequest>,
) -> Result<Json<ChatResponse>, ApiError> {
    let name = req.chat.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad("chat names are one word"));
    }
    if req.text.trim().is_empty() {
        return Err(bad("empty message"));
    }
    let target = Target::new("local", name);
    if let Some(agent) = req.agent.as_deref().filter(|a| !a.is_empty()) {
        if !s.coordinator.agents().exists(agent) {
            return Err(bad(format!(
                "no agent named `{agent}` (agents: {})",
                s.coordinator.agents().names().join(", ")
            )));
        }
        s.coordinator
            .store()
            .set_chat_agent(&target.to_string(), agent)
            .await
            .map_err(internal)?;
    }
    let message_id = crate::channels::local::new_message_id();
    let mut after = s.local.latest_seq();
    let inbound = Inbound::direct(target, "local", &message_id, &req.text);
    s.coordinator.accept(inbound).await.map_err(internal)?;
    // Replies can take as long as the model does; the client's own timeout decides.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ApiError(
                StatusCode::GATEWAY_TIMEOUT,
                "no reply within an hour".into(),
            ));
        }
        let msgs = tokio::select! {
            m = s.local.wait(name, after, left) => m,
            _ = s.shutdown.cancelled() => return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway is shutting down; your message is stored and will be answered after it restarts".into(),
            )),
        };
        for m in msgs {
            after = after.max(m.seq);
            if m.reply_to.as_deref() == Some(message_id.as_str()) {
                return Ok(Json(ChatResponse {
                    reply: m.text,
                    seq: m.seq,
                }));
            }
        }
    }
}

async fn poll(
    State(s): State<ApiState>,
    Path(chat): Path<String>,
    Query(q): Query<PollQuery>,
) -> Json<Vec<LocalMessage>> {
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(60));
    tokio::select! {
        m = s.local.wait(&chat, q.after, wait) => Json(m),
        _ = s.shutdown.cancelled() => Json(Vec::new()),
    }
}

async fn send(
    State(s): State<ApiState>,
    Json(req): Json<SendRequest>,
) -> Result<Json<Done>, ApiError> {
    if let Some(f) = &req.file {
        let message = s
            .coordinator
            .send_file_to(&req.to, None, std::path::Path::new(f), &req.text)
            .await
            .map_err(bad)?;
        return Ok(Json(Done { message }));
    }
    s.coordinator
        .send_to(&req.to, &req.text)
        .await
        .map_err(bad)?;
    Ok(Json(Done {
        message: format!("queued for {}", req.to),
    }))
}

async fn sessions(State(s): State<ApiState>) -> Result<Json<Vec<SessionRow>>, ApiError> {
    Ok(Json(
        s.coordinator
            .store()
            .sessions_live()
            .await
            .map_err(internal)?,
    ))
}

async fn reset_sessions(
    State(s): State<ApiState>,
    Json(req): Json<ResetRequest>,
) -> Result<Json<Done>, ApiError> {
    let n = s
        .coordinator
        .store()
        .sessions_end(req.key.as_deref().unwrap_or(""))
        .await
        .map_err(internal)?;
    Ok(Json(Done {
        message: format!("ended {n} session(s); the next message in each chat starts fresh"),
    }))
}

async fn tasks(State(s): State<ApiState>) -> Result<Json<Vec<TaskRow>>, ApiError> {
    Ok(Json(
        s.coordinator
            .store()
            .tasks_recent(None)
            .await
            .map_err(internal)?,
    ))
}

async fn cancel_task(
    State(s): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Done>, ApiError> {
    let message = s.coordinator.cancel_task(id).await.map_err(bad)?;
    Ok(Json(Done { message }))
}

async fn cron_run(State(s): State<ApiState>, Path(id): Path<i64>) -> Result<Json<Done>, ApiError> {
    let c = &s.coordinator;
    let message = crate::cron::run_now(c, c.clock(), id).await.map_err(bad)?;
    Ok(Json(Done { message }))
}

/// The CLI edited the cron tables itself (they work with the gateway down): look again now
/// rather than at the next scheduled wake-up.
async fn cron_changed(State(s): State<ApiState>) -> Json<Done> {
    s.coordinator.store().cron_changed();
    Json(Done {
        message: "ok".into(),
    })
}

async fn mcp_list(State(s): State<ApiState>) -> Json<Vec<crate::tools::mcp::ServerInfo>> {
    Json(s.coordinator.agents().tools().mcp().info())
}

/// Lists the tools of a running server again (and refreshes what agents are offered).
async fn mcp_test(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<crate::tools::mcp::ServerInfo>, ApiError> {
    let mcp = s.coordinator.agents().tools().mcp().clone();
    Ok(Json(mcp.test(&name).await.map_err(bad)?))
}

#[derive(Debug, Deserialize)]
pub struct ApprovalsQuery {
    #[serde(default)]
    pub all: bool,
}

async fn approvals_list(
    State(s): State<ApiState>,
    Query(q): Query<ApprovalsQuery>,
) -> Result<Json<Vec<crate::store::ApprovalRow>>, ApiError> {
    Ok(Json(
        s.coordinator
            .store()
            .approvals_list(!q.all)
            .await
            .map_err(internal)?,
    ))
}

/// `answer`: `approve`, `approve-session` or `deny`.
async fn approvals_answer(
    State(s): State<ApiState>,
    Path((id, answer)): Path<(i64, String)>,
) -> Result<Json<Done>, ApiError> {
    use crate::coordinator::ApprovalAnswer;
    let answer = match answer.as_str() {
        "approve" => ApprovalAnswer::Approve,
        "approve-session" => ApprovalAnswer::ApproveSession,
        "deny" => ApprovalAnswer::Deny,
        other => {
            return Err(bad(format!(
                "`{other}` is not approve, approve-session or deny"
            )));
        }
    };
    let message = s
        .coordinator
        .decide_approval(id, answer, "the terminal")
        .await
        .map_err(bad)?;
    Ok(Json(Done { message }))
}
