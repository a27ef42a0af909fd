//! Telegram benchmark (prints figures; asserts nothing about time): the real gateway binary
//! (teloxide, SQLite) and the floor bot (teloxide + reqwest, no storage: see `common/floor.rs`),
//! each against its own fake Bot API and instantly answering fake model on loopback, in
//! interleaved runs. Each figure is printed as the floor's, ours and the ratio, medians over the
//! runs (`SWITCHBOARD_BENCH_RUNS`, default 5):
//!
//! - start → first getUpdates (from spawning the process);
//! - idle RSS with Telegram connected, idle CPU per minute;
//! - the first message after start, and the CPU all the bot's threads spent on it (on a VM
//!   the wall time also holds the host's latency in waking idle vCPUs: the CPU figure is the
//!   steadier one), then 50 sequential round trips (p50, p99), from the update becoming
//!   available to the reply being posted;
//! - 200 messages from 200 chats at once: time until all are answered, and the CPU it took;
//!   in the first run, the RSS a quiet minute later (not with the guard: it waits 65 s);
//! - ours restarted on the state the run left: restart → first getUpdates;
//! - Bot API calls (besides getUpdates) per message, and bytes stored per message (ours).
//!
//! Then ours alone under faults. Figures go to `target/bench-figures/telegram.json`; see
//! `common/mod.rs` for the regression guard.
//!
//! Run: `cargo bench --bench telegram`. To look inside (the figures of such a run are not
//! comparable):
//! - `BENCH_LATE_RSS=1` also prints ours' RSS 225 s after the burst, once its idle connections
//!   have closed;
//! - `BENCH_SMAPS=1` prints where ours' idle RSS is, the first message's page faults and how
//!   much RSS it brought back, and the slowest round trips;
//! - `BENCH_TRACE=perf` records call graphs of the round trips and the burst, ours and the
//!   floor's (`/tmp/bench-perf-{ours,floor}.data`; `BENCH_PERF_HZ` samples more often);
//!   `BENCH_TRACE=strace` counts their system calls (`/tmp/bench-strace-*.txt`;
//!   `BENCH_STRACE_LOG=1` logs each call instead); `BENCH_TRACE=first` writes a timeline of
//!   our first message's system calls (`/tmp/bench-first.txt`), `BENCH_TRACE=firstperf` its
//!   CPU samples and page faults (minor and major, with the addresses that faulted) with call
//!   graphs (`/tmp/bench-first-perf.data`);
//! - `BENCH_TRACE=callgrind`, with ours started under callgrind (`scripts/dev.sh hot-path` does
//!   it), profiles the first message alone and writes `link/hot-path.ld` from it.

#[path = "../tests/it/support/mod.rs"]
mod support;

mod common;

use common::{FloorProcess, Row, Runs, cpu_secs, ms, pct, rss_mib};
use std::path::Path;
use std::time::{Duration, Instant};
use support::fake_telegram::FakeTelegram;
use support::{FakeModel, TestGateway};

const ROWS: &[Row] = &[
    Row {
        label: "start → first getUpdates",
        key: "start_ms",
        unit: "ms",
    },
    Row {
        label: "restart → first getUpdates (after the burst)",
        key: "restart_ms",
        unit: "ms",
    },
    Row {
        label: "idle RSS, Telegram connected",
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
        label: "CPU for the first message (all threads)",
        key: "first_cpu_ms",
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
        label: "200 chats at once, all answered",
        key: "burst_s",
        unit: "s",
    },
    Row {
        label: "CPU for that burst",
        key: "burst_cpu_s",
        unit: "s",
    },
    Row {
        label: "RSS right after the burst",
        key: "burst_rss_mib",
        unit: "MiB",
    },
    Row {
        label: "RSS a quiet minute after the burst (first run)",
        key: "quiet_rss_mib",
        unit: "MiB",
    },
    Row {
        label: "Bot API calls per message (besides getUpdates)",
        key: "calls_per_msg",
        unit: "",
    },
    Row {
        label: "bytes stored per message",
        key: "bytes_per_msg",
        unit: "B",
    },
];

const GUARDED: common::Guarded = &[
    ("idle_rss_mib", "idle RSS, Telegram connected (MiB)"),
    ("calls_per_msg", "Bot API calls per message"),
    ("bytes_per_msg", "bytes stored per message"),
];

/// How long after connecting the idle figures start (`BENCH_SETTLE_SECS`, default 1).
fn settle() -> Duration {
    Duration::from_secs_f64(
        std::env::var("BENCH_SETTLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1.0),
    )
}

/// Bytes in use in the SQLite database (pages minus free pages), read while the gateway runs.
fn stored_bytes(db: &Path) -> f64 {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return f64::NAN;
    };
    let q = |p: &str| c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
    match (q("page_count"), q("freelist_count"), q("page_size")) {
        (Ok(n), Ok(free), Ok(size)) => ((n - free) * size) as f64,
        _ => f64::NAN,
    }
}

fn other_calls(tg: &FakeTelegram) -> u64 {
    tg.calls_by_method()
        .iter()
        .filter(|(m, _)| m.as_str() != "getupdates")
        .map(|(_, n)| n)
        .sum()
}

/// When the bot's first `getUpdates` (since the last `reset_first_poll`) arrived.
async fn first_poll(tg: &FakeTelegram) -> Instant {
    loop {
        if let Some(t) = tg.first_poll() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_sent(tg: &FakeTelegram, n: usize) {
    while tg.sent().len() < n {
        tokio::task::yield_now().await;
    }
}

/// The process under test: ours or the floor.
enum Bot {
    Ours(Box<TestGateway>),
    Floor(FloorProcess),
}

impl Bot {
    fn pid(&self) -> u32 {
        match self {
            Bot::Ours(g) => g.pid().expect("pid"),
            Bot::Floor(f) => f.pid(),
        }
    }
}

async fn one_run(ours: bool, runs: &mut Runs, smaps: bool, quiet: bool) -> Option<TestGateway> {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let (bot, t0) = if ours {
        let extra = format!(
            r#"channels: {{ telegram: {{ token: "1:BENCH", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            tg.url
        );
        let gw = TestGateway::start(&model, &extra).await;
        let t0 = gw.spawned_at.expect("spawned");
        (Bot::Ours(Box::new(gw)), t0)
    } else {
        let t0 = Instant::now();
        (
            Bot::Floor(FloorProcess::spawn("telegram", &tg.url, &model.url)),
            t0,
        )
    };
    let pid = bot.pid();
    runs.add("start_ms", ms(first_poll(&tg).await.duration_since(t0)));
    if ours {
        // Connected: commands registered, polling.
        while tg.commands().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(settle()).await;
    runs.add("idle_rss_mib", rss_mib(pid));
    if smaps && ours {
        println!("idle smaps of ours:\n{}", common::smaps_summary(pid));
    }
    let window = common::idle_window();
    let threads0 = common::thread_cpu(pid);
    let idle = common::cpu_over(pid, window).await;
    if smaps && ours {
        println!(
            "idle CPU by thread over {window:?}:\n{}",
            common::thread_cpu_delta(&threads0, &common::thread_cpu(pid))
        );
    }
    runs.add("idle_cpu_s_per_min", idle * 60.0 / window.as_secs_f64());

    let db = match &bot {
        Bot::Ours(g) => Some(g.dir.path().join("state/switchboard.db")),
        Bot::Floor(_) => None,
    };
    let stored0 = db.as_deref().map_or(f64::NAN, stored_bytes);
    let calls0 = other_calls(&tg);

    let side = if ours { "ours" } else { "floor" };
    let trace = std::env::var("BENCH_TRACE").ok();
    // `BENCH_TRACE=first`: a timeline of the first message's system calls.
    // `BENCH_TRACE=firstperf`: where its CPU time and page faults go.
    let first_trace = match (ours, trace.as_deref()) {
        (true, Some("first")) => {
            let args = [
                "-f",
                "-ttt",
                "-T",
                "-o",
                "/tmp/bench-first.txt",
                "-p",
                &pid.to_string(),
            ];
            Some(common::Tracer::attach("strace", &args.map(String::from)))
        }
        (true, Some("firstperf")) => {
            let args = [
                "record",
                "-e",
                "cpu-clock/freq=25000/",
                "-e",
                "page-faults/period=1/",
                "-d",
                "-e",
                "major-faults/period=1/",
                "-e",
                "sched:sched_switch",
                "-e",
                "sched:sched_wakeup",
                "-e",
                "raw_syscalls:sys_enter",
                "-e",
                "raw_syscalls:sys_exit",
                "-g",
                "-o",
                "/tmp/bench-first-perf.data",
                "-p",
                &pid.to_string(),
            ];
            Some(common::Tracer::attach("perf", &args.map(String::from)))
        }
        (true, Some("callgrind")) => {
            // The gateway runs under callgrind with its instrumentation off (see
            // `scripts/dev.sh hot-path`): profile the first message only.
            common::hot_path::callgrind_control(&["-i", "on"], pid);
            None
        }
        _ => None,
    };
    let faults0 = common::faults(pid);
    let rss0 = common::rss_mib(pid);
    let cpu0 = common::cpu_secs(pid);
    let t = Instant::now();
    tg.dm(1000, "first message");
    wait_sent(&tg, 1).await;
    runs.add("first_ms", ms(t.elapsed()));
    runs.add("first_cpu_ms", (common::cpu_secs(pid) - cpu0) * 1e3);
    if let Some(t) = first_trace {
        t.stop();
    }
    if ours && trace.as_deref() == Some("callgrind") {
        common::hot_path::first_message_profiled(pid).await;
    }
    if smaps {
        let f = common::faults(pid);
        println!(
            "first message ({side}): {} minor, {} major page faults; RSS {:.2} → {:.2} MiB",
            f.0 - faults0.0,
            f.1 - faults0.1,
            rss0,
            common::rss_mib(pid)
        );
    }
    if let (Bot::Ours(g), true) = (&bot, std::env::var_os("BENCH_LOG").is_some()) {
        // Start-up and the first message (with SWITCHBOARD_TEST_LOG=debug).
        tokio::time::sleep(Duration::from_millis(100)).await;
        println!("{}", g.log());
    }

    // `BENCH_TRACE=strace`: count the system calls of the 50 round trips and the burst;
    // `BENCH_TRACE=perf`: record where their CPU goes. The figures of such a run are slowed by
    // the tracer; only the trace means something.
    let tracer = trace.filter(|t| t == "strace" || t == "perf").map(|tool| {
        let (out, args) = trace_args(&tool, side, pid);
        (common::Tracer::attach(&tool, &args), out)
    });
    let n = 50;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let before = tg.sent().len();
        let t = Instant::now();
        tg.dm(1000 + (i % 20) as i64, &format!("ping {i}"));
        wait_sent(&tg, before + 1).await;
        lat.push(t.elapsed());
    }
    if smaps {
        // Which round trips were slowest (the p99 is the slowest but one of 50).
        let mut slow: Vec<(usize, Duration)> = lat.iter().copied().enumerate().collect();
        slow.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
        let slow: Vec<String> = slow
            .iter()
            .take(4)
            .map(|(i, d)| format!("#{i} {:.2} ms", ms(*d)))
            .collect();
        println!("slowest round trips ({side}): {}", slow.join(", "));
    }
    lat.sort();
    runs.add("p50_ms", ms(pct(&lat, 0.5)));
    runs.add("p99_ms", ms(pct(&lat, 0.99)));
    runs.add(
        "calls_per_msg",
        (other_calls(&tg) - calls0) as f64 / (n + 1) as f64,
    );

    let before = tg.sent().len();
    let threads0 = common::thread_cpu(pid);
    let c0 = cpu_secs(pid);
    let t = Instant::now();
    for i in 0..200 {
        tg.dm(50_000 + i, "burst");
    }
    while tg.sent().len() < before + 200 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    runs.add("burst_s", t.elapsed().as_secs_f64());
    runs.add("burst_cpu_s", cpu_secs(pid) - c0);
    runs.add("burst_rss_mib", rss_mib(pid));
    if smaps {
        println!(
            "burst CPU by thread ({side}):\n{}",
            common::thread_cpu_delta(&threads0, &common::thread_cpu(pid))
        );
    }
    if let Some((t, out)) = tracer {
        t.stop();
        println!("trace ({side}) of 50 round trips + 200 chats at once: {out}");
    }
    if let Some(db) = &db {
        // Let the last replies' bookkeeping commit.
        tokio::time::sleep(Duration::from_millis(200)).await;
        runs.add(
            "bytes_per_msg",
            (stored_bytes(db) - stored0) / (n + 201) as f64,
        );
    }
    if quiet {
        // Past the gateway's quiet minute, after which it drops the code the messages ran.
        tokio::time::sleep(Duration::from_secs(65)).await;
        runs.add("quiet_rss_mib", rss_mib(pid));
        // `BENCH_LATE_RSS=1`: and once the burst's idle connections have closed (reqwest closes
        // them within 180 s) and the heap trimmer's late trim has run.
        if ours && std::env::var_os("BENCH_LATE_RSS").is_some() {
            tokio::time::sleep(Duration::from_secs(160)).await;
            println!("RSS 225 s after the burst (ours): {:.2} MiB", rss_mib(pid));
        }
    }
    match bot {
        Bot::Ours(mut g) => {
            g.stop("TERM").await;
            tg.reset_first_poll();
            g.restart().await;
            let t0 = g.spawned_at.expect("spawned");
            runs.add("restart_ms", ms(first_poll(&tg).await.duration_since(t0)));
            Some(*g)
        }
        Bot::Floor(_) => None,
    }
}

/// Where `BENCH_TRACE=perf|strace` writes for `side`, and the tracer's arguments.
fn trace_args(tool: &str, side: &str, pid: u32) -> (String, Vec<String>) {
    let pid = pid.to_string();
    if tool == "perf" {
        let out = format!("/tmp/bench-perf-{side}.data");
        // `BENCH_PERF_HZ` samples more often (the default keeps perf's own cost small).
        let hz = std::env::var("BENCH_PERF_HZ").unwrap_or_else(|_| "2999".into());
        let args = [
            "record",
            "-F",
            &hz,
            "--call-graph",
            "dwarf,32768",
            "-o",
            &out,
            "-p",
            &pid,
        ];
        (out.clone(), args.map(String::from).to_vec())
    } else {
        let out = format!("/tmp/bench-strace-{side}.txt");
        // `BENCH_STRACE_LOG=1` logs every call (with its time) instead of counting them.
        let count = if std::env::var_os("BENCH_STRACE_LOG").is_some() {
            "-tt"
        } else {
            "-c"
        };
        let args = ["-f", count, "-o", &out, "-p", &pid];
        (out.clone(), args.map(String::from).to_vec())
    }
}

/// Ours alone: a fifth of sendMessage/getUpdates calls fail at random (429 with retry_after 1,
/// 502, 500, malformed JSON, dropped connections); 200 messages over 20 chats.
async fn faults() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:BENCH", apiUrl: "{}", dmPolicy: "open" }} }},"#,
        tg.url
    );
    let _gw = TestGateway::start(&model, &extra).await;
    while tg.commands().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tg.chaos(0.2, &["sendMessage", "getUpdates"], 42);
    let t0 = Instant::now();
    for i in 0..200 {
        tg.dm(70_000 + (i % 20), &format!("fault {i}"));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while tg.sent().len() < 200 + tg.acted_then_dropped().len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "\ntelegram under faults (20% of calls: {:?}): 200 messages over 20 chats, last delivered {:.1?} after the first was sent ({} resent after an answer was lost)",
        tg.chaos_injected(),
        t0.elapsed(),
        tg.acted_then_dropped().len()
    );
}

async fn run() {
    if std::env::var_os("BENCH_LOG").is_none() {
        // SAFETY: set before any other thread reads the environment in this process.
        unsafe { std::env::set_var("SWITCHBOARD_TEST_LOG", "warn") };
    }
    // SAFETY: as above.
    unsafe { std::env::set_var("SWITCHBOARD_TEST_SYSTEM_CLOCK", "1") };
    let n: usize = std::env::var("SWITCHBOARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let smaps = std::env::var_os("BENCH_SMAPS").is_some();
    let quiet = std::env::var_os("SWITCHBOARD_BENCH_GUARD").is_none();
    let (mut floor, mut ours) = (Runs::default(), Runs::default());
    for i in 0..n {
        // Interleaved, alternating which goes first.
        for side in [i % 2 == 0, i % 2 == 1] {
            if side {
                one_run(true, &mut ours, smaps && i == 0, quiet && i == 0).await;
            } else {
                one_run(false, &mut floor, smaps && i == 0, quiet && i == 0).await;
            }
        }
        println!(
            "run {}: floor first message {:.2} ms, ours {:.2} ms; idle RSS floor {:.2} MiB, ours {:.2} MiB",
            i + 1,
            floor.all("first_ms").last().copied().unwrap_or(f64::NAN),
            ours.all("first_ms").last().copied().unwrap_or(f64::NAN),
            floor
                .all("idle_rss_mib")
                .last()
                .copied()
                .unwrap_or(f64::NAN),
            ours.all("idle_rss_mib").last().copied().unwrap_or(f64::NAN),
        );
    }
    common::print_table(
        &format!("telegram: floor bot vs switchboard, {n} interleaved runs"),
        ROWS,
        &floor,
        &ours,
    );
    if std::env::var_os("SWITCHBOARD_BENCH_GUARD").is_none() {
        faults().await;
    }
    common::finish(
        "telegram",
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
