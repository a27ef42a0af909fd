//! The web control room: server-rendered pages on the gateway's port, beside the API.
//!
//! Pages are HTML built by maud (escaped by default) plus one small script that only enhances:
//! every form works without it, and it adds what HTML cannot do alone (the chat's streamed reply,
//! live logs, an overview that refreshes). Nothing is loaded from elsewhere; the stylesheet and
//! the script are embedded in the binary (`assets/`).
//!
//! Three nets keep it safe, all in [`guard`] and [`finish`], so no page can forget them:
//! - who: a login cookie (HttpOnly, SameSite=Strict) made from `gateway.token`; without a token,
//!   only requests from this machine are served;
//! - CSRF: every state-changing request carries the login's CSRF token (a form field or the
//!   `X-CSRF-Token` header) and, when the browser says where it comes from, our own origin;
//! - secrets: every page and API response is passed through the log redactor before it leaves
//!   (every secret the config holds, plus token shapes), and a strict Content-Security-Policy.
//!
//! Each page reads and changes state through the same functions the API and the CLI use.

pub mod activity;
mod assets;
pub mod auth;
mod layout;
mod pages;

use crate::gateway::api::ApiState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::Markup;

/// What a page handler fails with: a status and a sentence for the person.
pub struct WebError(StatusCode, String);

impl WebError {
    pub fn bad(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, msg.into())
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = layout::bare(
            "Something went wrong",
            maud::html! {
                p role="alert" { (self.1) }
                p { a href="/" { "Back to the overview" } }
            },
        );
        (self.0, body).into_response()
    }
}

pub type Page = Result<Markup, WebError>;

/// The control room's routes: pages behind the login, plus the login itself and the assets.
pub fn router(state: ApiState) -> Router {
    pages::routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .merge(auth::routes())
        .merge(assets::routes())
        .with_state(state)
}

/// Whether `path` is served by the gateway itself (the API, the control room), so nothing else
/// (a Telegram webhook) may take it.
pub fn reserved_path(path: &str) -> bool {
    let first = |p: &str| {
        p.trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let path = first(path);
    ["v1", "health", "login", "logout", "assets"].contains(&path.as_str())
        || layout::NAV.iter().any(|(p, _)| first(p) == path)
}

/// Everything the API does not answer goes to the control room, whose routes are built on the
/// first such request: a gateway nobody opens the pages of holds none of them.
pub async fn serve(State(s): State<ApiState>, req: Request) -> Response {
    let mut pages = s.pages.get_or_init(|| router(s.clone())).clone();
    match tower_service::Service::call(&mut pages, req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Wraps the whole HTTP surface (API and pages) in [`finish`].
pub fn layer(router: Router, state: ApiState) -> Router {
    router.layer(axum::middleware::from_fn_with_state(state, finish))
}

/// Every response: security headers, and the body of every page and JSON answer redacted.
async fn finish(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    // The health check (polled by supervisors) says `{"ok":true}` and nothing else: running the
    // redactor's automata on it would give each runtime thread a cache of its own to keep.
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    s.activity.touch();
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    let h = &mut parts.headers;
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, assets::CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: that makes browsers send `Origin: null` with our own forms.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    let kind = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let redact = kind.starts_with("text/html")
        || kind.starts_with("application/json")
        || kind.starts_with("text/plain");
    if !redact {
        return Response::from_parts(parts, body);
    }
    // Pages and API answers are small; a body that is not must not be held whole.
    let bytes = match axum::body::to_bytes(body, 32 << 20).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a response to redact it");
            return (StatusCode::INTERNAL_SERVER_ERROR, "response too large").into_response();
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = match s.redactor.redact(&text) {
        std::borrow::Cow::Borrowed(_) => Body::from(bytes),
        std::borrow::Cow::Owned(clean) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(clean)
        }
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_paths_are_the_gateways_own() {
        for p in [
            "/",
            "/v1/status",
            "/health",
            "/cron",
            "/cron/1",
            "/logs",
            "/assets/app.js",
        ] {
            assert!(super::reserved_path(p), "{p}");
        }
        for p in ["/telegram", "/tg/hook", "/cronjobs"] {
            assert!(!super::reserved_path(p), "{p}");
        }
    }
}
