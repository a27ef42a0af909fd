//! Discord benchmark (prints figures; asserts nothing about time): the real gateway binary with
//! serenity and SQLite, against the fake Discord (REST + WebSocket gateway) and an instantly
//! answering fake model on loopback.
//!
//! Run: `cargo bench --bench discord`.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::fake_discord::FakeDiscord;
use support::{FakeModel, TestGateway};

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run() {
    // SAFETY: set before other threads read the environment.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_LOG", "warn") };
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let extra = format!(
        r#"channels: {{ discord: {{ token: "BENCH", apiUrl: "{}", dmPolicy: "open", guilds: {{ "40": {{ channels: "*" }} }}, requireMention: false }} }},"#,
        d.api_url
    );
    let gw = TestGateway::start(&model, &extra).await;
    let pid = gw.pid().expect("pid");
    d.wait_until("identify", |d| d.identifies() >= 1 && d.connected())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mib(pid);

    let n = 300;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n + 20 {
        let before = d.sent().len();
        let t0 = Instant::now();
        d.message(
            1000 + (i % 20) as u64,
            Some(40),
            7,
            &format!("ping {i}"),
            false,
        );
        while d.sent().len() <= before {
            tokio::task::yield_now().await;
        }
        if i >= 20 {
            lat.push(t0.elapsed());
        }
    }
    lat.sort();
    println!(
        "discord round trip ({n} msgs, MESSAGE_CREATE sent → reply posted): p50 {:?}, p99 {:?}, max {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );

    let before = d.sent().len();
    let t0 = Instant::now();
    for i in 0..200u64 {
        d.message(20_000 + i, Some(40), 8, "burst", false);
    }
    while d.sent().len() < before + 200 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let burst = t0.elapsed();
    let after = rss_mib(pid);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let settled = rss_mib(pid);
    println!(
        "discord burst: 200 messages across 200 channels answered in {burst:?}; gateway RSS idle {idle:.1} MiB, right after the burst {after:.1} MiB, 6 s later {settled:.1} MiB"
    );

    let resumes = d.resumes();
    let t0 = Instant::now();
    d.drop_connection();
    d.wait_until("resume", |d| d.resumes() > resumes && d.connected())
        .await;
    println!(
        "discord reconnect after a dropped connection (resumed): {:?}",
        t0.elapsed()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}
