//! Soak: 20,000 messages over 200 chats through the fake Telegram, in waves of one message per
//! chat, so every session grows to 100 exchanges and all 200 are answered concurrently. Memory
//! must settle back after each wave (no leak), and file descriptors and threads must not grow.
//! Figures are printed; run with `cargo test --test it soak -- --ignored --nocapture` (CI runs
//! it as its own step). `SWITCHBOARD_SOAK_MESSAGES` changes the count.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::*;
use std::time::{Duration, Instant};

struct Proc {
    rss_mib: f64,
    peak_mib: f64,
    threads: u64,
    fds: usize,
}

fn sample(pid: u32) -> Proc {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Proc {
        rss_mib: field("VmRSS:") as f64 / 1024.0,
        peak_mib: field("VmHWM:") as f64 / 1024.0,
        threads: field("Threads:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: run by CI as its own step"]
async fn soak_20000_messages_over_200_chats() {
    let total: usize = std::env::var("SWITCHBOARD_SOAK_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let chats = 200usize;
    let waves = total / chats;
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SOAK", apiUrl: "{}", dmPolicy: "open" }} }},"#,
        tg.url
    );
    let mut gw = TestGateway::start(&model, &extra).await;
    let pid = gw.pid().expect("pid");
    while tg.commands().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t0 = Instant::now();
    let mut warm: Option<Proc> = None;
    let mut settled_max: f64 = 0.0;
    for wave in 0..waves {
        let before = tg.sent().len();
        for c in 0..chats {
            tg.dm(
                100_000 + c as i64,
                &format!("wave {wave} chat {c}: a message of ordinary length"),
            );
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while tg.sent().len() < before + chats {
            assert!(Instant::now() < deadline, "wave {wave} not answered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if wave == 9 {
            // Warm: pools, caches and the heap have reached their working size.
            tokio::time::sleep(Duration::from_secs(6)).await;
            warm = Some(sample(pid));
        }
        if wave % 20 == 19 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            let s = sample(pid);
            settled_max = settled_max.max(s.rss_mib);
            eprintln!(
                "soak: {} messages, settled RSS {:.1} MiB, peak {:.1} MiB, {} threads, {} fds",
                (wave + 1) * chats,
                s.rss_mib,
                s.peak_mib,
                s.threads,
                s.fds
            );
        }
    }
    let elapsed = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let end = sample(pid);
    let warm = warm.expect("at least 10 waves");
    assert_eq!(
        tg.sent().len(),
        waves * chats,
        "every message answered once"
    );
    assert!(gw.running());
    eprintln!(
        "soak: {} messages over {chats} chats in {elapsed:.1?} ({:.0} msgs/s); RSS warm {:.1} MiB, end {:.1} MiB, peak {:.1} MiB; threads {} → {}; fds {} → {}",
        waves * chats,
        (waves * chats) as f64 / elapsed.as_secs_f64(),
        warm.rss_mib,
        end.rss_mib,
        end.peak_mib,
        warm.threads,
        end.threads,
        warm.fds,
        end.fds
    );
    // No leaks: descriptors and threads stay where they were once warm, and memory settles
    // back near its warm size (sessions grow, but nothing per message is kept).
    assert!(
        end.fds <= warm.fds + 4,
        "fds grew: {} → {}",
        warm.fds,
        end.fds
    );
    assert!(
        end.threads <= warm.threads + 2,
        "threads grew: {} → {}",
        warm.threads,
        end.threads
    );
    assert!(
        end.rss_mib <= warm.rss_mib * 1.5 + 8.0,
        "memory grew: {:.1} → {:.1} MiB",
        warm.rss_mib,
        end.rss_mib
    );
}
