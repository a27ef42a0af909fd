//! Telegram benchmark (prints figures; asserts nothing about time): the real gateway binary,
//! teloxide and SQLite, against the fake Bot API and an instantly answering fake model on loopback.
//!
//! - round trip from an update becoming available to the reply being posted (sequential);
//! - 200 messages from 200 different chats at once: time until all are answered;
//! - gateway RSS idle and after the burst.
//!
//! Run: `cargo bench --bench telegram`.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::fake_telegram::FakeTelegram;
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
    // SAFETY: set before any other thread reads the environment in this process.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_LOG", "warn") };
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:BENCH", apiUrl: "{}", dmPolicy: "open" }} }},"#,
        tg.url
    );
    let gw = TestGateway::start(&model, &extra).await;
    let pid = gw.pid().expect("pid");
    // Wait until the poller is connected (commands registered).
    while tg.commands().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mib(pid);

    // Warm-up, then sequential round trips.
    let n = 300;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n + 20 {
        let before = tg.sent().len();
        let t0 = Instant::now();
        tg.dm(1000 + (i % 20) as i64, &format!("ping {i}"));
        loop {
            if tg.sent().len() > before {
                break;
            }
            tokio::task::yield_now().await;
        }
        if i >= 20 {
            lat.push(t0.elapsed());
        }
    }
    lat.sort();
    println!(
        "telegram round trip ({n} msgs, update available → reply posted): p50 {:?}, p99 {:?}, max {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );

    // Burst: 200 chats at once.
    let before = tg.sent().len();
    let t0 = Instant::now();
    for i in 0..200 {
        tg.dm(50_000 + i, "burst");
    }
    while tg.sent().len() < before + 200 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let burst = t0.elapsed();
    let after = rss_mib(pid);
    if std::env::var_os("BENCH_SMAPS").is_some() {
        let smaps =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        println!("{smaps}");
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let settled = rss_mib(pid);
    println!(
        "telegram burst: 200 messages from 200 chats answered in {burst:?}; gateway RSS idle {idle:.1} MiB, right after the burst {after:.1} MiB, 6 s later {settled:.1} MiB"
    );

    // Faults: a fifth of sendMessage/getUpdates calls fail at random (429 with retry_after 1,
    // 502, 500, malformed JSON, dropped connections); 200 messages over 20 chats.
    tg.chaos(0.2, &["sendMessage", "getUpdates"], 42);
    let before = tg.sent().len();
    let t0 = Instant::now();
    for i in 0..200 {
        tg.dm(70_000 + (i % 20), &format!("fault {i}"));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while tg.sent().len() < before + 200 + tg.acted_then_dropped().len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let faulty = t0.elapsed();
    println!(
        "telegram under faults (20% of calls: {:?}): 200 messages over 20 chats, last delivered {faulty:.1?} after the first was sent ({} resent after an answer was lost)",
        tg.chaos_injected(),
        tg.acted_then_dropped().len()
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
