//! Core benchmark (prints figures; asserts nothing about time).
//!
//! 1. Throughput and added latency of the whole message path — inbox (SQLite, WAL) → lane →
//!    session → agent loop → outbox → delivery — driven through the real coordinator with an
//!    instant in-process model and an in-process channel.
//! 2. The real `switchboard gateway` binary: time from spawn to accepting connections, and its
//!    idle RSS.
//!
//! 3. The same message path on PostgreSQL (a throwaway cluster, as the tests use), with one
//!    gateway and with two sharing the store (messages handed to each in turn, as a load
//!    balancer would).
//!
//! Run: `cargo bench --bench core` (release build).

#[path = "../tests/it/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::config::Config;
use switchboard::gateway::Gateway;
use switchboard::providers::{Block, Models, Provider, ProviderError, Request, Response, Usage};
use switchboard_channel::{
    ChannelError, ChannelHandle, Inbound, InboundSink, Outbound, Sender, Target,
};
use tokio::sync::Notify;

struct Instant0;

#[async_trait]
impl Provider for Instant0 {
    async fn complete(&self, _req: &Request) -> Result<Response, ProviderError> {
        Ok(Response {
            content: vec![Block::Text { text: "ok".into() }],
            usage: Usage::default(),
        })
    }
}

/// Records when each reply (by the message id it answers) was delivered.
#[derive(Default)]
struct Recorder {
    delivered: Mutex<HashMap<String, Instant>>,
    notify: Notify,
}

#[async_trait]
impl Sender for Recorder {
    async fn send(&self, m: &Outbound) -> Result<String, ChannelError> {
        if let Some(id) = &m.reply_to {
            self.delivered.lock().insert(id.clone(), Instant::now());
            self.notify.notify_waiters();
        }
        Ok("1".into())
    }
    fn max_len(&self) -> usize {
        4096
    }
}

fn config(dir: &std::path::Path, port: u16, store: Option<&str>) -> Config {
    let store = store.map_or(String::new(), |url| {
        format!(r#"store: {{ url: "{url}" }},"#)
    });
    let text = format!(
        r#"{{ stateDir: "{}", gateway: {{ port: {port} }}, {store}
        providers: {{ instant: {{ kind: "openai", baseUrl: "http://127.0.0.1:9/v1" }} }},
        models: {{ default: "instant/x" }}, agents: {{ jarvis: {{ coordinator: true }} }},
        // No token: the real Telegram channel stays off and the bench's in-process channel takes
        // its name, so access control runs as for real (an allow-listed sender).
        channels: {{ telegram: {{ dmPolicy: "allowlist", allowFrom: ["u"] }} }} }}"#,
        dir.display()
    );
    Config::from_text(std::path::Path::new("bench.json5"), &text).expect("bench config")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_for(rec: &Recorder, n: usize) {
    loop {
        let notified = rec.notify.notified();
        if rec.delivered.lock().len() >= n {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
    }
}

/// The message path of `gateways` gateways on one store (`store`: a PostgreSQL URL, or the
/// SQLite file when `None`), messages handed to each in turn.
async fn core_path(store: Option<String>, gateways: u16) {
    let what = match (&store, gateways) {
        (None, _) => "core path".to_string(),
        (Some(_), 1) => "core path on PostgreSQL".to_string(),
        (Some(_), n) => format!("core path on PostgreSQL, {n} gateways"),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = Arc::new(Recorder::default());
    let mut gws = Vec::new();
    for port in 1..=gateways {
        let config = Arc::new(config(
            &dir.path().join(port.to_string()),
            port,
            store.as_deref(),
        ));
        let mut models = Models::from_config(&config);
        models.set_provider("instant", Arc::new(Instant0));
        gws.push(
            Gateway::start(
                config,
                models,
                vec![ChannelHandle::new("telegram", rec.clone())],
            )
            .await
            .expect("start"),
        );
    }
    let gw = &gws[0];
    let coordinators: Vec<_> = gws.iter().map(|g| g.coordinator.clone()).collect();
    let to = |i: usize| &coordinators[i % coordinators.len()];
    let msg = |chat: usize, i: usize| {
        Inbound::direct(
            Target::new("telegram", chat.to_string()),
            "u",
            &format!("m{i}"),
            "hello",
        )
    };

    // Sequential: one message at a time, so latency is the path's own cost.
    let n_seq = 2_000;
    let trips = switchboard::store::Store::round_trips();
    let mut lat = Vec::with_capacity(n_seq);
    for i in 0..n_seq {
        let t0 = Instant::now();
        to(i).accept(msg(i % 50, i)).await.expect("accept");
        wait_for(&rec, i + 1).await;
        let done = rec.delivered.lock()[&format!("m{i}")];
        lat.push(done - t0);
    }
    lat.sort();
    let trips = (switchboard::store::Store::round_trips() - trips) as f64 / n_seq as f64;
    println!(
        "{what}, sequential ({n_seq} msgs): added latency p50 {:?}, p99 {:?}, max {:?}{}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1],
        if store.is_some() {
            format!("; {trips:.1} database round trips per message")
        } else {
            String::new()
        }
    );

    // Bursts: many chats at once, throughput of the whole path. First handed over one message at
    // a time (as the Discord gateway does), then in pages of 100 (as Telegram's getUpdates does),
    // each on fresh chats so both start from the same state.
    let mut next_id = n_seq;
    for (label, page, chat_base) in [("one at a time", 1, 1_000), ("in pages of 100", 100, 2_000)] {
        let n = 20_000;
        let chats = 200;
        let base = rec.delivered.lock().len();
        let t0 = Instant::now();
        let mut submitted = HashMap::with_capacity(n);
        let mut i = 0;
        while i < n {
            let batch: Vec<Inbound> = (i..(i + page).min(n))
                .map(|k| {
                    submitted.insert(format!("m{}", next_id + k), Instant::now());
                    msg(chat_base + k % chats, next_id + k)
                })
                .collect();
            let first = i;
            i += batch.len();
            if page == 1 {
                for (k, m) in batch.into_iter().enumerate() {
                    to(first + k).accept(m).await.expect("accept");
                }
            } else {
                to(first / page).accept_batch(batch).await.expect("accept");
            }
        }
        wait_for(&rec, base + n).await;
        let elapsed = t0.elapsed();
        next_id += n;
        let delivered = rec.delivered.lock();
        let mut lat: Vec<Duration> = submitted
            .iter()
            .map(|(id, t)| delivered[id].saturating_duration_since(*t))
            .collect();
        lat.sort();
        let wal = std::fs::metadata(dir.path().join("1/switchboard.db-wal")).map_or(0, |m| m.len());
        let (writes, commits) = gw.coordinator.store().write_counts();
        println!(
            "{what}, burst ({n} msgs over {chats} chats, {label}): {:.0} msgs/s, {:?} total; latency under load p50 {:?}, p99 {:?}; WAL {:.1} MB; {:.1} writes per commit so far",
            n as f64 / elapsed.as_secs_f64(),
            elapsed,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            wal as f64 / 1e6,
            writes as f64 / commits.max(1) as f64
        );
    }
    for c in &coordinators {
        c.shutdown(Duration::from_secs(5)).await;
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn gateway_process() {
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..7 {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let cfg = dir.path().join("c.json5");
        std::fs::write(
            &cfg,
            format!(
                r#"{{ stateDir: "{}", gateway: {{ port: {port} }},
                providers: {{ anthropic: {{ apiKey: "x" }} }},
                models: {{ default: "anthropic/m" }} }}"#,
                dir.path().display()
            ),
        )
        .expect("config");
        let t0 = Instant::now();
        let mut child = std::process::Command::new(bin)
            .args(["gateway", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                panic!("gateway did not listen");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        starts.push(t0.elapsed());
        std::thread::sleep(Duration::from_secs(1));
        if let Some(r) = rss_kib(child.id()) {
            rss.push(r);
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    starts.sort();
    rss.sort();
    println!(
        "gateway binary: start-to-listening median {:?} (min {:?}, first run incl. DB creation {:?}); idle RSS median {:.1} MiB (min {:.1})",
        starts[starts.len() / 2],
        starts[0],
        starts[starts.len() - 1],
        rss[rss.len() / 2] as f64 / 1024.0,
        rss[0] as f64 / 1024.0
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // RUST_LOG=debug shows why a message was not answered (the bench would wait forever).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(core_path(None, 1));
    gateway_process();
    if let Some(url) = support::postgres::database() {
        rt.block_on(core_path(Some(url), 1));
    }
    if let Some(url) = support::postgres::database() {
        rt.block_on(core_path(Some(url), 2));
    }
}
