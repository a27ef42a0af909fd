//! The page shell (navigation, head, skip link) and the small pieces every page uses.

use super::assets::{CSS_URL, JS_URL};
use super::auth::Login;
use crate::gateway::api::ApiState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::TimeZone;
use maud::{DOCTYPE, Markup, html};

/// The sections, in navigation order: (path, label).
pub(super) const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/chat", "Chat"),
    ("/sessions", "Sessions"),
    ("/tasks", "Tasks"),
    ("/cron", "Cron"),
    ("/approvals", "Approvals"),
    ("/pairing", "Pairing"),
    ("/memory", "Memory"),
    ("/tools", "Skills & MCP"),
    ("/usage", "Usage"),
    ("/logs", "Logs"),
];

/// What every page handler needs besides the state: the login's CSRF token, the time zone for
/// times, and whether only the content is wanted (the overview's refresh).
pub struct Ctx {
    pub csrf: String,
    pub tz: chrono_tz::Tz,
    fragment: bool,
}

impl FromRequestParts<ApiState> for Ctx {
    type Rejection = super::WebError;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Self::Rejection> {
        let csrf = parts
            .extensions
            .get::<Login>()
            .map(|l| l.csrf.clone())
            .ok_or_else(|| {
                super::WebError(axum::http::StatusCode::UNAUTHORIZED, "Log in first.".into())
            })?;
        Ok(Ctx {
            csrf,
            tz: s.coordinator.config().tz(),
            fragment: parts.headers.get("x-fragment").is_some(),
        })
    }
}

impl Ctx {
    /// A whole page, with `section` (a path of [`NAV`]) marked current.
    pub fn page(&self, section: &str, title: &str, body: Markup) -> Markup {
        self.page_with(section, title, None, body)
    }

    /// A page whose content refreshes itself every `refresh` seconds.
    pub fn page_with(
        &self,
        section: &str,
        title: &str,
        refresh: Option<u32>,
        body: Markup,
    ) -> Markup {
        if self.fragment {
            return html! { h1 { (title) } (body) };
        }
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, Some(&self.csrf)))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header {
                        span.brand { "switchboard" }
                        nav aria-label="Sections" {
                            ul {
                                @for (path, label) in NAV {
                                    li { a href=(path) aria-current=[(*path == section).then_some("page")] { (label) } }
                                }
                            }
                        }
                        form method="post" action="/logout" {
                            (self.csrf_field())
                            button type="submit" { "Log out" }
                        }
                    }
                    main id="main" data-refresh=[refresh] {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
    }

    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// A one-button form posting to `action`.
    pub fn button(&self, action: &str, label: &str, class: &str) -> Markup {
        html! {
            form.inline method="post" action=(action) {
                (self.csrf_field())
                button type="submit" class=(class) { (label) }
            }
        }
    }

    /// A time stored as ms since the epoch, in the config's zone.
    pub fn time(&self, ms: i64) -> String {
        match self.tz.timestamp_millis_opt(ms).single() {
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => "—".into(),
        }
    }

    pub fn time_opt(&self, ms: Option<i64>) -> String {
        ms.map(|m| self.time(m)).unwrap_or_else(|| "—".into())
    }
}

/// The head of every page; pages behind the login carry its CSRF token (for the script) and
/// the script itself.
fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(c) = csrf { meta name="csrf" content=(c); }
            title { (title) " · switchboard" }
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(CSS_URL);
            @if csrf.is_some() { script src=(JS_URL) defer {} }
        }
    }
}

/// A page without navigation (errors, the login).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body { main id="main" { h1 { (title) } (body) } }
        }
    }
}

pub fn login(next: &str, error: Option<&str>) -> Markup {
    bare(
        "Log in",
        html! {
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Gateway token" }
                p.mute id="token-help" { "The value of gateway.token in the gateway's config." }
                input #token type="password" name="token" autocomplete="current-password" required
                    autofocus aria-describedby="token-help"
                    aria-invalid=[error.map(|_| "true")];
                @if let Some(e) = error { p.field-error role="alert" { (e) } }
                p { button.primary type="submit" { "Log in" } }
            }
        },
    )
}

/// A notice from the action just done (`?msg=` after a redirect), shown politely.
pub fn notice(msg: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = msg.filter(|m| !m.is_empty()) {
            p.note role="status" { (m) }
        }
    }
}

/// Where to go after an action, with what happened to show there.
pub fn back(to: &str, msg: &str) -> axum::response::Redirect {
    let sep = if to.contains('?') { '&' } else { '?' };
    axum::response::Redirect::to(&format!("{to}{sep}msg={}", super::auth::urlencode(msg)))
}

#[derive(serde::Deserialize, Default)]
pub struct MsgQuery {
    #[serde(default)]
    pub msg: Option<String>,
}
