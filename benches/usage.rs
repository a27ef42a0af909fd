//! What accounting costs: the time `Ledger::used` adds to each model call (pricing, one row
//! stored, the day's sums updated), the budget check before each turn, and how much the database
//! grows per 10,000 calls.
//!
//! `cargo bench --bench usage`

use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::config::Config;
use switchboard::cron::clock::SystemClock;
use switchboard::notices::Notices;
use switchboard::providers::{Call, Meter, Usage};
use switchboard::store::Store;
use switchboard::usage::Ledger;

const CALLS: usize = 10_000;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn db_bytes(dir: &std::path::Path) -> u64 {
    ["switchboard.db", "switchboard.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Moves the WAL into the database file, so its size counts what is stored.
fn checkpoint(db: &std::path::Path) {
    if let Ok(c) = rusqlite::Connection::open(db) {
        let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"{{ stateDir: "{}", timezone: "Europe/London", budgets: {{ dailyUsd: 1000000 }},
        providers: {{ anthropic: {{ apiKey: "x" }} }}, models: {{ default: "anthropic/claude-sonnet-4-5" }},
        agents: {{ jarvis: {{ coordinator: true }} }} }}"#,
        dir.path().display()
    );
    let path = dir.path().join("config.json5");
    std::fs::write(&path, text).expect("config");
    let config = Config::load(&path).expect("config loads");
    let store = Store::open(&config.db_path()).expect("store");
    let clock = Arc::new(SystemClock);
    let notices = Arc::new(Notices::new(None, store.clone(), clock.clone()));
    let ledger = Ledger::new(&config, store.clone(), clock, notices);
    let usage = Usage {
        input_tokens: 1834,
        output_tokens: 412,
        cache_read_tokens: 12_000,
        cache_write_tokens: 900,
    };
    // Warm up (statement cache, day sums) and checkpoint, so growth counts rows only.
    let call = |i: usize| Call {
        agent: if i.is_multiple_of(3) { "clu" } else { "jarvis" }.into(),
        chat: Some(format!("telegram:{}", 100 + i % 50)),
        session: Some((i % 200) as i64),
        task: i.is_multiple_of(10).then_some(i as i64),
        purpose: "chat",
    };
    for i in 0..100 {
        ledger
            .used(&call(i), "anthropic/claude-sonnet-4-5", &usage)
            .await;
    }
    checkpoint(&config.db_path());
    let before = db_bytes(dir.path());
    let mut used = Vec::with_capacity(CALLS);
    let mut checks = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let c = call(i);
        let t0 = Instant::now();
        ledger.used(&c, "anthropic/claude-sonnet-4-5", &usage).await;
        used.push(t0.elapsed());
        let t0 = Instant::now();
        std::hint::black_box(ledger.refusal(&c.agent)).await;
        checks.push(t0.elapsed());
    }
    checkpoint(&config.db_path());
    let after = db_bytes(dir.path());
    println!(
        "usage record per model call ({CALLS} calls): p50 {:?}, p99 {:?}, max {:?}",
        pct(&mut used, 0.5),
        pct(&mut used, 0.99),
        pct(&mut used, 1.0)
    );
    println!(
        "budget check per turn: p50 {:?}, p99 {:?}",
        pct(&mut checks, 0.5),
        pct(&mut checks, 0.99)
    );
    println!(
        "database growth per {CALLS} calls: {:.1} KiB ({:.0} bytes a call)",
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / CALLS as f64
    );
}
