//! Discord benchmark (prints figures; asserts nothing about time): the real gateway binary
//! (serenity, SQLite) and the floor bot (serenity + reqwest, no storage: see `common/floor.rs`),
//! each against its own fake Discord (REST + WebSocket gateway, heartbeats every 41.25 s as
//! Discord's) and instantly answering fake model on loopback, in interleaved runs; medians over
//! `SWITCHBOARD_BENCH_RUNS` (default 5):
//!
//! - start → first IDENTIFY; idle RSS and idle CPU per minute with Discord connected;
//! - the first message after start, 50 sequential round trips (MESSAGE_CREATE sent → reply
//!   posted), 200 channels at once and its CPU, REST calls per message;
//! - ours with Telegram and Discord both connected: idle RSS and CPU;
//! - ours: reconnect after a dropped connection.
//!
//! Run: `cargo bench --bench discord`. `BENCH_TRACE=callgrind`, with ours started under
//! callgrind (`scripts/dev.sh hot-path` does it), profiles the first message alone.

#[path = "../tests/it/support/mod.rs"]
mod support;

mod common;

use common::{FloorProcess, Row, Runs, cpu_secs, ms, pct, rss_mib};
use std::time::{Duration, Instant};
use support::fake_discord::FakeDiscord;
use support::fake_telegram::FakeTelegram;
use support::{FakeModel, TestGateway};

const HEARTBEAT_MS: u64 = 41_250;

const ROWS: &[Row] = &[
    Row {
        label: "start → first IDENTIFY",
        key: "start_ms",
        unit: "ms",
    },
    Row {
        label: "idle RSS, Discord connected",
        key: "idle_rss_mib",
        unit: "MiB",
    },
    Row {
        label: "idle CPU per minute",
        key: "idle_cpu_s_per_min",
        unit: "s",
    },
    Row {
        label: "first message after start",
        key: "first_ms",
        unit: "ms",
    },
    Row {
        label: "round trip p50 (50 sequential)",
        key: "p50_ms",
        unit: "ms",
    },
    Row {
        label: "round trip p99 (50 sequential)",
        key: "p99_ms",
        unit: "ms",
    },
    Row {
        label: "200 channels at once, all answered",
        key: "burst_s",
        unit: "s",
    },
    Row {
        label: "CPU for that burst",
        key: "burst_cpu_s",
        unit: "s",
    },
    Row {
        label: "REST calls per message",
        key: "calls_per_msg",
        unit: "",
    },
    Row {
        label: "idle RSS, Telegram + Discord connected",
        key: "both_idle_rss_mib",
        unit: "MiB",
    },
    Row {
        label: "idle CPU per minute, Telegram + Discord",
        key: "both_idle_cpu_s_per_min",
        unit: "s",
    },
];

const GUARDED: common::Guarded = &[
    ("idle_rss_mib", "idle RSS, Discord connected (MiB)"),
    (
        "both_idle_rss_mib",
        "idle RSS, Telegram + Discord connected (MiB)",
    ),
    ("calls_per_msg", "REST calls per message"),
];

fn discord_extra(d: &FakeDiscord) -> String {
    format!(
        r#"discord: {{ token: "BENCH", apiUrl: "{}", dmPolicy: "open", guilds: {{ "40": {{ channels: "*" }} }}, requireMention: false }}"#,
        d.api_url
    )
}

async fn wait_sent(d: &FakeDiscord, n: usize) {
    while d.sent().len() < n {
        tokio::task::yield_now().await;
    }
}

async fn idle_cpu(pid: u32) -> f64 {
    let window = common::idle_window();
    common::cpu_over(pid, window).await * 60.0 / window.as_secs_f64()
}

async fn one_run(ours: bool, runs: &mut Runs) {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    d.set_heartbeat_interval(HEARTBEAT_MS);
    let mut floor = None;
    let mut gw = None;
    let t0 = if ours {
        let extra = format!("channels: {{ {} }},", discord_extra(&d));
        let g = TestGateway::start(&model, &extra).await;
        let t0 = g.spawned_at.expect("spawned");
        gw = Some(g);
        t0
    } else {
        let t0 = Instant::now();
        floor = Some(FloorProcess::spawn("discord", &d.api_url, &model.url));
        t0
    };
    let pid = gw
        .as_ref()
        .and_then(|g| g.pid())
        .or(floor.as_ref().map(|f| f.pid()))
        .expect("pid");
    d.wait_until("identify", |d| d.identifies() >= 1 && d.connected())
        .await;
    let identify = d.first_identify().expect("identified");
    runs.add("start_ms", ms(identify.duration_since(t0)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    runs.add("idle_rss_mib", rss_mib(pid));
    runs.add("idle_cpu_s_per_min", idle_cpu(pid).await);

    let calls0 = d.rest_calls();
    // `BENCH_TRACE=callgrind`: see `common/hot_path.rs` (`scripts/dev.sh hot-path`).
    let profile = ours && std::env::var("BENCH_TRACE").as_deref() == Ok("callgrind");
    if profile {
        common::hot_path::callgrind_control(&["-i", "on"], pid);
    }
    let t = Instant::now();
    d.message(1000, Some(40), 7, "first message", false);
    wait_sent(&d, 1).await;
    runs.add("first_ms", ms(t.elapsed()));
    if profile {
        common::hot_path::first_message_profiled(pid).await;
    }
    let n = 50;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let before = d.sent().len();
        let t = Instant::now();
        d.message(
            1000 + (i % 20) as u64,
            Some(40),
            7,
            &format!("ping {i}"),
            false,
        );
        wait_sent(&d, before + 1).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    runs.add("p50_ms", ms(pct(&lat, 0.5)));
    runs.add("p99_ms", ms(pct(&lat, 0.99)));
    runs.add(
        "calls_per_msg",
        (d.rest_calls() - calls0) as f64 / (n + 1) as f64,
    );

    let before = d.sent().len();
    let c0 = cpu_secs(pid);
    let t = Instant::now();
    for i in 0..200u64 {
        d.message(20_000 + i, Some(40), 8, "burst", false);
    }
    while d.sent().len() < before + 200 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    runs.add("burst_s", t.elapsed().as_secs_f64());
    runs.add("burst_cpu_s", cpu_secs(pid) - c0);
}

/// Ours with both channels connected, idle.
async fn both(runs: &mut Runs) {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    d.set_heartbeat_interval(HEARTBEAT_MS);
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:BENCH", apiUrl: "{}", dmPolicy: "open" }}, {} }},"#,
        tg.url,
        discord_extra(&d)
    );
    let gw = TestGateway::start(&model, &extra).await;
    let pid = gw.pid().expect("pid");
    d.wait_until("identify", |d| d.identifies() >= 1 && d.connected())
        .await;
    while tg.commands().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    runs.add("both_idle_rss_mib", rss_mib(pid));
    runs.add("both_idle_cpu_s_per_min", idle_cpu(pid).await);
}

async fn reconnect() {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let extra = format!("channels: {{ {} }},", discord_extra(&d));
    let _gw = TestGateway::start(&model, &extra).await;
    d.wait_until("identify", |d| d.identifies() >= 1 && d.connected())
        .await;
    let resumes = d.resumes();
    let t0 = Instant::now();
    d.drop_connection();
    d.wait_until("resume", |d| d.resumes() > resumes && d.connected())
        .await;
    println!(
        "\ndiscord reconnect after a dropped connection (resumed): {:?}",
        t0.elapsed()
    );
}

async fn run() {
    // SAFETY: set before other threads read the environment.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_LOG", "warn") };
    // SAFETY: as above.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_SYSTEM_CLOCK", "1") };
    let n: usize = std::env::var("SWITCHBOARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut floor, mut ours) = (Runs::default(), Runs::default());
    for i in 0..n {
        for side in [i % 2 == 0, i % 2 == 1] {
            if side {
                one_run(true, &mut ours).await;
            } else {
                one_run(false, &mut floor).await;
            }
        }
        both(&mut ours).await;
        println!(
            "run {}: floor first message {:.2} ms, ours {:.2} ms; idle RSS floor {:.2} MiB, ours {:.2} MiB, ours with both channels {:.2} MiB",
            i + 1,
            floor.all("first_ms").last().copied().unwrap_or(f64::NAN),
            ours.all("first_ms").last().copied().unwrap_or(f64::NAN),
            floor
                .all("idle_rss_mib")
                .last()
                .copied()
                .unwrap_or(f64::NAN),
            ours.all("idle_rss_mib").last().copied().unwrap_or(f64::NAN),
            ours.all("both_idle_rss_mib")
                .last()
                .copied()
                .unwrap_or(f64::NAN),
        );
    }
    common::print_table(
        &format!("discord: floor bot vs switchboard, {n} interleaved runs"),
        ROWS,
        &floor,
        &ours,
    );
    if std::env::var_os("SWITCHBOARD_BENCH_GUARD").is_none() {
        reconnect().await;
    }
    common::finish(
        "discord",
        &[("floor", &floor), ("switchboard", &ours)],
        GUARDED,
    );
}

fn main() {
    if common::floor::run_if_floor() {
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}
