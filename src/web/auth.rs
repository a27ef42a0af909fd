//! Who may use the control room, and proof that a change comes from its own pages.
//!
//! A login is a random id in an HttpOnly, SameSite=Strict cookie, held in memory with its CSRF
//! token and expiry (a restart logs everyone out, which is the safe way to fail). With
//! `gateway.token` set, the login page trades the token for a login. Without one, the gateway
//! listens on loopback only (the bind check refuses anything else) and a login is handed to any
//! request from this machine that names this machine as its host (a page elsewhere that points
//! its own name at 127.0.0.1 is refused: DNS rebinding).

use crate::gateway::api::ApiState;
use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "sb_session";
/// The header a script sends its CSRF token in (forms send the `csrf` field).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a login lasts.
const TTL: Duration = Duration::from_secs(12 * 3600);
/// Logins held at once; the oldest goes first.
const MAX_LOGINS: usize = 64;
/// The largest form body read to find its CSRF field (a memory file being saved).
const MAX_FORM: usize = 4 << 20;

/// The login a request carries (a request extension for the page handlers).
#[derive(Clone)]
pub struct Login {
    pub csrf: String,
}

#[derive(Default)]
pub struct Logins {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl Logins {
    /// A new login: its cookie id and its CSRF token.
    fn create(&self) -> (String, String) {
        let (id, csrf) = (random_hex(), random_hex());
        let mut map = self.map.lock();
        let now = Instant::now();
        map.retain(|_, (_, exp)| *exp > now);
        if map.len() >= MAX_LOGINS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, e))| *e)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), (csrf.clone(), now + TTL));
        (id, csrf)
    }

    fn csrf_of(&self, id: &str) -> Option<String> {
        let map = self.map.lock();
        map.get(id)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(csrf, _)| csrf.clone())
    }

    fn remove(&self, id: &str) {
        self.map.lock().remove(id);
    }
}

fn random_hex() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub use switchboard_channel::constant_time_eq;

fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The login's CSRF token, when the request carries a live login cookie.
pub fn login_csrf(s: &ApiState, headers: &HeaderMap) -> Option<String> {
    s.logins.csrf_of(cookie_id(headers)?)
}

/// Whether the browser says the request comes from one of our own pages (requests that say
/// nothing, such as the CLI's, pass: they carry no cookie a third party could ride on).
pub fn same_origin(headers: &HeaderMap) -> bool {
    // A browser sets this itself and no page can change it; older browsers send only `Origin`.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(o), Some(h)) => {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                == Some(h)
        }
        _ => false,
    }
}

fn is_loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cookie(id: &str, headers: &HeaderMap, max_age: u64) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes() == b"https");
    let v = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

fn refuse(status: StatusCode, why: &str) -> Response {
    super::WebError(status, why.to_string()).into_response()
}

/// In front of every page: a login (or a loopback request without a token), and for anything
/// that changes state, a matching CSRF token from our own origin.
pub async fn guard(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let peer_loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut set_cookie = None;
    let csrf = match login_csrf(&s, req.headers()) {
        Some(csrf) => csrf,
        None if s.token.is_none() => {
            if !peer_loopback || !is_loopback_host(req.headers()) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "Without gateway.token the control room answers only on this machine, at http://127.0.0.1. Set a token to use it from elsewhere: `switchboard config set gateway.token \"$(openssl rand -hex 24)\"`.",
                );
            }
            if !safe {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "This form has expired: reload the page and try again.",
                );
            }
            let (id, csrf) = s.logins.create();
            set_cookie = Some(cookie(&id, req.headers(), TTL.as_secs()));
            csrf
        }
        None if safe => {
            let path = req.uri().path();
            let next = if path == "/" {
                String::new()
            } else {
                format!("?next={}", urlencode(path))
            };
            return Redirect::to(&format!("/login{next}")).into_response();
        }
        None => return refuse(StatusCode::UNAUTHORIZED, "Log in first."),
    };
    let mut req = req;
    if !safe {
        if !same_origin(req.headers()) {
            return refuse(
                StatusCode::FORBIDDEN,
                "Refused: this request did not come from the control room's own pages.",
            );
        }
        let (ok, rebuilt) = csrf_matches(req, &csrf).await;
        let Some(r) = rebuilt.filter(|_| ok) else {
            return refuse(
                StatusCode::FORBIDDEN,
                "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.",
            );
        };
        req = r;
    }
    req.extensions_mut().insert(Login { csrf });
    let mut resp = next.run(req).await;
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// Whether the request carries `csrf` (header, or `csrf` field of a form body); the request
/// rebuilt with its body, when it could be read.
async fn csrf_matches(req: Request, csrf: &str) -> (bool, Option<Request>) {
    if let Some(given) = req.headers().get(CSRF_HEADER) {
        let ok = constant_time_eq(given.as_bytes(), csrf.as_bytes());
        return (ok, Some(req));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return (false, Some(req));
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return (false, None);
    };
    let ok = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf"))
        .is_some_and(|(_, v)| constant_time_eq(v.as_bytes(), csrf.as_bytes()));
    (ok, Some(Request::from_parts(parts, Body::from(bytes))))
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|v| v.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// The login page and its form (outside the guard).
pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route("/login", get(login_page).post(login))
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only our own paths: `/x`, never `//host` or a full URL.
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

async fn login_page(State(s): State<ApiState>, Query(q): Query<NextQuery>) -> Response {
    if s.token.is_none() {
        return Redirect::to("/").into_response();
    }
    super::layout::login(local_path(&q.next), None).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(token) = &s.token else {
        return Redirect::to("/").into_response();
    };
    if !same_origin(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Refused: this request did not come from the control room's own pages.",
        );
    }
    let next = local_path(&f.next);
    if !constant_time_eq(f.token.trim().as_bytes(), token.as_bytes()) {
        // Slows guessing down; the token itself is long enough that guessing is hopeless.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tracing::info!("control room: a login with a wrong token was refused");
        return (
            StatusCode::UNAUTHORIZED,
            super::layout::login(next, Some("That is not the gateway token.")),
        )
            .into_response();
    }
    let (id, _) = s.logins.create();
    let mut resp = Redirect::to(next).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, cookie(&id, &headers, TTL.as_secs()));
    resp
}

/// Ends the login (behind the guard, so it carries a CSRF token).
pub async fn logout(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_id(&headers) {
        s.logins.remove(id);
    }
    let mut resp = Redirect::to(if s.token.is_some() { "/login" } else { "/" }).into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, cookie("", &headers, 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origin_must_be_our_host() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn loopback_hosts_only() {
        for h in ["127.0.0.1:1", "localhost:2", "[::1]:3", "localhost"] {
            assert!(is_loopback_host(&headers(&[("host", h)])), "{h}");
        }
        for h in ["evil.example:1", "192.168.1.2:3", "127.0.0.1.evil.example"] {
            assert!(!is_loopback_host(&headers(&[("host", h)])), "{h}");
        }
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local_path("/cron"), "/cron");
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; sb_session=abc; b=2")]);
        assert_eq!(cookie_id(&h), Some("abc"));
        assert_eq!(cookie_id(&headers(&[("cookie", "sb_sessionx=1")])), None);
    }

    #[test]
    fn logins_expire_and_are_bounded() {
        let l = Logins::default();
        let (id, csrf) = l.create();
        assert_eq!(l.csrf_of(&id), Some(csrf));
        l.remove(&id);
        assert_eq!(l.csrf_of(&id), None);
        for _ in 0..MAX_LOGINS + 10 {
            l.create();
        }
        assert!(l.map.lock().len() <= MAX_LOGINS);
    }
}
