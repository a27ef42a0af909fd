//! The stylesheet and the script, embedded in the binary: the control room loads nothing from
//! anywhere else, and needs no build step (both are plain files, served as written).

use crate::gateway::api::ApiState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");

/// Only our own script and stylesheet; no inline code, no frames, forms only to ourselves.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Asset URLs carry the version, so a browser may keep them and still sees a new release's.
pub const CSS_URL: &str = concat!("/assets/app.css?v=", env!("CARGO_PKG_VERSION"));
pub const JS_URL: &str = concat!("/assets/app.js?v=", env!("CARGO_PKG_VERSION"));

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route(
            "/assets/app.css",
            get(|| serve("text/css; charset=utf-8", CSS)),
        )
        .route(
            "/assets/app.js",
            get(|| serve("text/javascript; charset=utf-8", JS)),
        )
}

async fn serve(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
}
