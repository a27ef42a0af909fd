//! Cron benchmark (prints figures; asserts nothing about time). Real gateway binary, real SQLite.
//!
//! - firing accuracy: jobs due at the next minute boundary; time from the scheduled instant to the
//!   post arriving in the chat (instant fake model on loopback);
//! - scheduler cost with 10,000 jobs: gateway RSS and CPU time per idle minute, and `cron list` time.
//!
//! Run: `cargo bench --bench cron` (takes a little over a minute: it waits for a real boundary).

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{FakeModel, TestGateway};

fn proc_stat(pid: u32) -> (f64, f64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
        / 1024.0;
    // utime + stime, in clock ticks (100 per second on Linux).
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(f64::NAN)
        / 100.0;
    (rss, cpu)
}

async fn accuracy() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    let n = 10;
    for i in 0..n {
        let to = format!("local:acc{i}");
        let out = gw
            .cli(&[
                "cron",
                "add",
                "* * * * *",
                "tick",
                "--to",
                &to,
                "--tz",
                "UTC",
            ])
            .await;
        assert!(out.status.success());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let boundary = Duration::from_secs((now.as_secs() / 60 + 1) * 60);
    let mut lags = Vec::new();
    for i in 0..n {
        let chat = format!("acc{i}");
        loop {
            if !gw.messages(&chat, 30).await.is_empty() {
                break;
            }
        }
        let arrived = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        lags.push(arrived.saturating_sub(boundary));
    }
    lags.sort();
    println!(
        "cron firing accuracy ({n} jobs at one minute boundary): scheduled → posted median {:?}, max {:?}",
        lags[n / 2],
        lags[n - 1]
    );
}

async fn ten_thousand_jobs() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    gw.stop("TERM").await;
    {
        let store = switchboard::store::Store::open(&gw.dir.path().join("state/switchboard.db"))
            .expect("store");
        let now = chrono::Utc::now();
        for i in 0..10_000 {
            let schedule = format!("{} {} * * *", i % 60, (i / 60) % 24);
            let s = switchboard::cron::Schedule::parse(&schedule, "Europe/London").unwrap();
            store
                .cron_add(&switchboard::store::NewJob {
                    name: format!("job {i}"),
                    schedule,
                    tz: "Europe/London".into(),
                    agent: "jarvis".into(),
                    message: "check in".into(),
                    target: Some(format!("local:c{i}")),
                    next_run: s
                        .next_after(now + chrono::Duration::days(1))
                        .map(|t| t.timestamp_millis()),
                })
                .await
                .expect("add");
        }
    }
    gw.restart().await;
    let pid = gw.pid().expect("pid");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, cpu0) = proc_stat(pid);
    let window = Duration::from_secs(20);
    tokio::time::sleep(window).await;
    let (_, cpu1) = proc_stat(pid);
    let per_min = (cpu1 - cpu0) * 60.0 / window.as_secs_f64();
    let t0 = Instant::now();
    let out = gw.cli(&["cron", "list"]).await;
    let list = t0.elapsed();
    assert!(out.status.success());
    let t0 = Instant::now();
    let out = gw.cli(&["cron", "list", "--json"]).await;
    let json = t0.elapsed();
    assert!(out.status.success());
    println!(
        "cron with 10,000 jobs: gateway RSS {rss:.1} MiB idle, CPU {:.0} ms per idle minute; `cron list` {list:?}, `cron list --json` {json:?} (whole CLI process)",
        per_min * 1000.0
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // SAFETY: set before the runtime (or any other thread) starts.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_LOG", "warn") };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(ten_thousand_jobs());
    rt.block_on(accuracy());
}
