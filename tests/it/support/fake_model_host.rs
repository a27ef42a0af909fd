//! A stand-in for the whisper.cpp model host (Hugging Face's `resolve/main/ggml-*.bin`) on
//! 127.0.0.1: serves files with `Content-Length`, honours `Range: bytes=N-` with `206` and
//! `Content-Range` as the real host does, records every request, and can cut the connection
//! part-way through a response to test resuming.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Served {
    pub file: String,
    /// The `Range` header's start, when the client asked for one.
    pub range_from: Option<u64>,
    /// Bytes actually sent in the body.
    pub sent: u64,
}

#[derive(Default)]
struct Inner {
    files: HashMap<String, Bytes>,
    /// Cut the next response to any file after this many body bytes.
    cut_next_after: Option<u64>,
    log: Vec<Served>,
}

#[derive(Clone)]
pub struct FakeModelHost {
    /// Base URL to pass as `--base-url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeModelHost {
    pub async fn start() -> FakeModelHost {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/resolve/main/{file}", get(serve))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/resolve/main", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        FakeModelHost { url, inner }
    }

    pub fn put(&self, file: &str, bytes: Vec<u8>) {
        self.inner
            .lock()
            .unwrap()
            .files
            .insert(file.to_string(), Bytes::from(bytes));
    }

    /// The next response sends `n` body bytes and then drops the connection.
    pub fn cut_next_after(&self, n: u64) {
        self.inner.lock().unwrap().cut_next_after = Some(n);
    }

    pub fn log(&self) -> Vec<Served> {
        self.inner.lock().unwrap().log.clone()
    }
}

/// Deterministic, incompressible-looking bytes standing in for a model file.
pub fn model_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn serve(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut g = inner.lock().unwrap();
    let Some(all) = g.files.get(&file).cloned() else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    let total = all.len() as u64;
    let range_from = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.trim_end_matches('-').parse::<u64>().ok());
    if let Some(from) = range_from
        && from >= total
    {
        g.log.push(Served {
            file,
            range_from,
            sent: 0,
        });
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{total}"))],
        )
            .into_response();
    }
    let from = range_from.unwrap_or(0);
    let body = all.slice(from as usize..);
    let cut = g.cut_next_after.take();
    let sent = cut.map_or(body.len() as u64, |n| n.min(body.len() as u64));
    g.log.push(Served {
        file,
        range_from,
        sent,
    });
    let mut resp = match cut {
        Some(n) => {
            let head = body.slice(..(n as usize).min(body.len()));
            let stream = futures_util::stream::iter(vec![
                Ok(head),
                Err(std::io::Error::other("connection cut by the test")),
            ]);
            Response::new(Body::from_stream(stream))
        }
        None => Response::new(Body::from(body.clone())),
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, body.len().into());
    h.insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    if range_from.is_some() {
        h.insert(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{total}", total - 1)
                .parse()
                .unwrap(),
        );
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    resp
}
