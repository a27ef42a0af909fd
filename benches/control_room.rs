//! The web control room, measured in a real headless Chromium against the release gateway on
//! the loopback fakes (prints figures; asserts nothing about time):
//!
//! - a cold load of the overview (fresh browser profile, nothing cached): bytes transferred
//!   (the page, its stylesheet and its script, headers included) and the time to a usable page
//!   (DOMContentLoaded: the deferred script has run) and to `load`, medians over 5 loads; plus
//!   the server's own time for the overview's HTML over keep-alive (p50/p99 of 200);
//! - the gateway's RSS idle, then with the chat page open and streaming 30 replies (peak, and
//!   after), the increase being what the UI costs;
//! - time from a chat message sent in the page to the first streamed text shown, and to the
//!   whole reply, p50/p99 over 30 (the fake model's first token comes at once, then 20 deltas
//!   20 ms apart).
//!
//! Run: `cargo bench --bench control_room`.

#[path = "../tests/it/support/mod.rs"]
mod support;

mod common;

use common::{median, ms, pct, rss_mib};

use std::time::{Duration, Instant};
use support::browser::Browser;
use support::fake_telegram::FakeTelegram;
use support::gateway::{config_text, free_port};
use support::{FakeModel, Reply, TestGateway};

/// Anonymous (heap, stacks) and file-backed (the binary's code pages) parts of the RSS, MiB.
fn split(pid: u32) -> (f64, f64) {
    (
        common::status_mib(pid, "RssAnon:"),
        common::status_mib(pid, "RssFile:"),
    )
}

const TOKEN: &str = "bench-token-0123456789abcdef";
const LOADS: usize = 5;
const MESSAGES: usize = 30;

async fn login_cookie(url: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let r = http
        .post(format!("{url}/login"))
        .form(&[("token", TOKEN), ("next", "/")])
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    set.split(';')
        .next()
        .and_then(|c| c.strip_prefix("sb_session="))
        .unwrap()
        .to_string()
}

/// A fresh browser logged in without having loaded any page of ours (nothing cached).
async fn cold_browser(url: &str, cookie: &str) -> Browser {
    let b = Browser::start().await.expect("chromium and chromedriver");
    b.goto(&format!("{url}/health")).await;
    // The login cookie, set from the page's script (WebDriver refuses cookies on a JSON page).
    b.client
        .execute(
            "document.cookie = 'sb_session=' + arguments[0] + '; path=/'",
            vec![serde_json::json!(cookie)],
        )
        .await
        .unwrap();
    b
}

#[tokio::main]
async fn main() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(
        &model.url,
        port,
        &dir.path().join("state"),
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            tg.url
        ),
    );
    let text = support::gateway::with_token(&text, port, TOKEN);
    let gw = TestGateway::start_in(dir, port, &text).await;
    let url = gw.url.clone();
    let pid = gw.pid().unwrap();
    // Start-up settles: its pages are dropped once the channels are connected.
    for _ in 0..200 {
        if gw.log().contains("dropped start-up pages") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mib(pid);
    let idle_split = split(pid);
    // The same gateway after answering a few Telegram messages: the message path's code is in.
    for i in 0..5 {
        tg.dm(4242, &format!("warm-up {i}"));
        tg.wait_sent(|s| s.iter().filter(|m| m.chat_id == 4242).count() > i)
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let working = rss_mib(pid);
    let cookie = login_cookie(&url).await;

    // Cold loads of the overview.
    let (mut bytes, mut dcl, mut load) = (Vec::new(), Vec::new(), Vec::new());
    let mut parts = String::new();
    for _ in 0..LOADS {
        let b = cold_browser(&url, &cookie).await;
        b.goto(&format!("{url}/")).await;
        let v = b
            .client
            .execute(
                r#"const n = performance.getEntriesByType('navigation')[0];
                   const r = performance.getEntriesByType('resource');
                   return [n.transferSize, n.domContentLoadedEventEnd, n.loadEventEnd,
                           r.map(x => [new URL(x.name).pathname, x.transferSize])];"#,
                vec![],
            )
            .await
            .unwrap();
        let a = v.as_array().unwrap();
        let res = a[3].as_array().unwrap();
        let total = a[0].as_f64().unwrap()
            + res
                .iter()
                .map(|x| x[1].as_f64().unwrap_or(0.0))
                .sum::<f64>();
        parts = format!(
            "page {:.1} KB + {}",
            a[0].as_f64().unwrap() / 1024.0,
            res.iter()
                .map(|x| format!(
                    "{} {:.1} KB",
                    x[0].as_str().unwrap_or("?"),
                    x[1].as_f64().unwrap_or(0.0) / 1024.0
                ))
                .collect::<Vec<_>>()
                .join(" + ")
        );
        bytes.push(total / 1024.0);
        dcl.push(a[1].as_f64().unwrap());
        load.push(a[2].as_f64().unwrap());
        b.close().await;
    }
    println!(
        "overview, cold load in Chromium (median of {LOADS}): {:.1} KB transferred ({parts}); usable (DOMContentLoaded) {:.1} ms, load {:.1} ms",
        median(bytes),
        median(dcl),
        median(load)
    );
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let mut server = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let body = http
            .get(format!("{url}/"))
            .header("cookie", format!("sb_session={cookie}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        server.push(t.elapsed());
        assert!(body.len() > 1000);
    }
    server.sort();
    println!(
        "overview HTML over keep-alive (200 requests): p50 {:.2} ms, p99 {:.2} ms",
        ms(pct(&server, 0.5)),
        ms(pct(&server, 0.99))
    );

    // The chat page open, streaming replies.
    let b = cold_browser(&url, &cookie).await;
    b.goto(&format!("{url}/chat/jarvis")).await;
    let open = rss_mib(pid);
    let mut peak = open;
    let mut peak_split = split(pid);
    let (mut first, mut whole) = (Vec::new(), Vec::new());
    for i in 0..MESSAGES {
        model.on(
            None,
            Reply::paced(
                &format!("Reply {i}: the control room shows this answer while it is being written, piece by piece."),
                20,
                Duration::from_millis(20),
            ),
        );
        let v = b
            .client
            .execute_async(
                r#"const [text, done] = [arguments[0], arguments[arguments.length - 1]];
                   const log = document.getElementById('chat-log');
                   const n0 = log.querySelectorAll('.msg.assistant').length;
                   const t0 = performance.now();
                   let first = null;
                   const obs = new MutationObserver(() => {
                     const els = log.querySelectorAll('.msg.assistant');
                     if (els.length <= n0) return;
                     const el = els[els.length - 1];
                     const t = el.textContent;
                     if (first === null && t.length > 0 && t !== '…') first = performance.now() - t0;
                     if (!el.classList.contains('pending')) { obs.disconnect(); done([first, performance.now() - t0]); }
                   });
                   obs.observe(log, { subtree: true, childList: true, characterData: true, attributes: true });
                   const f = document.getElementById('chat-form');
                   f.elements.text.value = text;
                   f.requestSubmit();"#,
                vec![serde_json::json!(format!("question {i}"))],
            )
            .await
            .unwrap();
        first.push(Duration::from_secs_f64(
            v[0].as_f64().unwrap_or(f64::NAN) / 1e3,
        ));
        whole.push(Duration::from_secs_f64(v[1].as_f64().unwrap() / 1e3));
        let now = rss_mib(pid);
        if now > peak {
            peak = now;
            peak_split = split(pid);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mib(pid);
    first.sort();
    whole.sort();
    println!(
        "web chat, message sent in the page → first streamed text shown: p50 {:.1} ms, p99 {:.1} ms; → whole reply: p50 {:.1} ms, p99 {:.1} ms ({MESSAGES} messages; the model paces the reply over 360 ms)",
        ms(pct(&first, 0.5)),
        ms(pct(&first, 0.99)),
        ms(pct(&whole, 0.5)),
        ms(pct(&whole, 0.99))
    );
    println!(
        "gateway RSS: idle {idle:.2} MiB; after 5 Telegram messages {working:.2} MiB; chat page open {open:.2} MiB; peak while streaming {peak:.2} MiB (+{:.2} vs idle, +{:.2} vs after Telegram); after {after:.2} MiB",
        peak - idle,
        peak - working
    );
    b.close().await;
    println!(
        "  of which anonymous (heap, stacks): idle {:.2} MiB, at the peak {:.2} MiB (+{:.2}); file-backed (the binary's code pages): idle {:.2}, at the peak {:.2} (+{:.2})",
        idle_split.0,
        peak_split.0,
        peak_split.0 - idle_split.0,
        idle_split.1,
        peak_split.1,
        peak_split.1 - idle_split.1
    );
    // Closed, and quiet for a minute: the control room gives its code pages back.
    tokio::time::sleep(Duration::from_secs(80)).await;
    let quiet = rss_mib(pid);
    println!(
        "gateway RSS once the page is closed and the control room quiet (80 s): {quiet:.2} MiB ({:+.2} vs idle)",
        quiet - idle
    );
    drop(gw);
}
