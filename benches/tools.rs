//! Tools benchmark (prints figures; asserts nothing about time), with the real MCP servers the
//! tests use (`mcp-server-everything`, stdio and streamable HTTP; `mcp-server-time`):
//!
//! - an MCP tool call through our layer (`tools::mcp::Servers::call`: lookup, timeout, result
//!   conversion and marking) against the same call made directly with an rmcp client, p50/p99,
//!   for a stdio and an HTTP server, interleaved;
//! - the gateway's idle RSS (its own process, not the children's) with three MCP servers
//!   configured, beside none;
//! - start → first getUpdates with one MCP server that takes 5 s to start, beside none (the
//!   channels must not wait for it);
//! - `web_fetch` of a 1 MB HTML page from a local server: time and output size;
//! - a 10 MB photo sent on Telegram: time until the model has it, the gateway's peak RSS, and its
//!   RSS a few seconds later.
//!
//! Run: `cargo bench --bench tools` (with the servers on PATH: `bash scripts/dev.sh bench`).

#[path = "../tests/it/support/mod.rs"]
mod support;

mod common;

use common::{ms, pct, rss_mib};
use rmcp::ServiceExt;
use serde_json::json;
use std::time::{Duration, Instant};
use support::fake_telegram::FakeTelegram;
use support::fake_web::FakeSite;
use support::gateway::free_port;
use support::mcp::HttpEverything;
use support::{FakeModel, TestGateway};
use switchboard::config::{McpConfig, McpServerConfig, WebConfig};
use switchboard::tools::mcp::{Lookup, Servers, Status};
use tokio_util::sync::CancellationToken;

const CALLS: usize = 400;

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

async fn ready(servers: &Servers, name: &str) {
    for _ in 0..1200 {
        if servers
            .info()
            .iter()
            .any(|s| s.name == name && s.status == Status::Ready)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("MCP server {name} never became ready: {:?}", servers.info());
}

/// p50 and p99 of our layer and of a direct rmcp client, calling `echo` on the same kind of
/// server, in alternating blocks of 20.
async fn call_overhead(label: &str, cfg: McpServerConfig) {
    let token = CancellationToken::new();
    let mut servers = std::collections::BTreeMap::new();
    servers.insert("every".to_string(), cfg.clone());
    let ours = Servers::start(&McpConfig { servers }, token.clone());
    ready(&ours, "every").await;
    let Some(Lookup::Tool(tool)) = ours.lookup("every__echo") else {
        panic!("no every__echo");
    };
    let direct = match &cfg.url {
        Some(url) => ()
            .serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
                url.as_str(),
            ))
            .await
            .expect("direct http client"),
        None => {
            let mut cmd = tokio::process::Command::new(cfg.command.as_deref().unwrap_or(""));
            cmd.args(&cfg.args);
            ().serve(rmcp::transport::TokioChildProcess::new(cmd).expect("spawn"))
                .await
                .expect("direct stdio client")
        }
    };
    let input = json!({ "message": "hello" });
    let args = input.as_object().cloned();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for block in 0..CALLS / 20 {
        for i in 0..20 {
            let ourside = (block + i) % 2 == 0;
            let t = Instant::now();
            if ourside {
                let out = ours.call(&tool, &input).await;
                assert!(!out.is_error, "{}", out.text);
                a.push(t.elapsed());
            } else {
                let mut p = rmcp::model::CallToolRequestParams::new("echo");
                p.arguments = args.clone();
                direct.peer().call_tool(p).await.expect("direct call");
                b.push(t.elapsed());
            }
        }
    }
    a.sort();
    b.sort();
    println!(
        "MCP call, {label}: direct p50 {:.3} ms p99 {:.3} ms | through switchboard p50 {:.3} ms p99 {:.3} ms | added p50 {:+.3} ms",
        ms(pct(&b, 0.5)),
        ms(pct(&b, 0.99)),
        ms(pct(&a, 0.5)),
        ms(pct(&a, 0.99)),
        ms(pct(&a, 0.5)) - ms(pct(&b, 0.5)),
    );
    let _ = direct.cancel().await;
    token.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn gateway_with(model: &FakeModel, tg: &FakeTelegram, mcp: &str) -> TestGateway {
    TestGateway::start(
        model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},
               voice: {{ enabled: false }}, mcp: {{ servers: {{ {mcp} }} }},"#,
            tg.url
        ),
    )
    .await
}

async fn idle_rss(http_url: &str) {
    let mut figures = Vec::new();
    for (label, mcp) in [
        ("no MCP servers", String::new()),
        (
            "three MCP servers",
            format!(
                r#"time: {{ command: "mcp-server-time" }}, every: {{ command: "mcp-server-everything" }},
                   remote: {{ url: "{http_url}" }}"#
            ),
        ),
    ] {
        let model = FakeModel::start().await;
        let tg = FakeTelegram::start().await;
        let gw = gateway_with(&model, &tg, &mcp).await;
        let pid = gw.pid().expect("pid");
        if !mcp.is_empty() {
            for _ in 0..1200 {
                let out = gw.cli(&["mcp", "list", "--json"]).await;
                let v: serde_json::Value =
                    serde_json::from_str(&support::stdout(&out)).unwrap_or_default();
                let n = v["servers"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|s| s["status"] == "ready").count());
                if n == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Past the start-up page drop (channels up + 200 ms) and settled.
        tokio::time::sleep(Duration::from_secs(3)).await;
        figures.push((label, rss_mib(pid)));
        drop(gw);
    }
    for (label, rss) in figures {
        println!("gateway idle RSS, Telegram connected, {label}: {rss:.2} MiB (ours only)");
    }
}

async fn start_with_slow_server() {
    for (label, mcp) in [
        ("no MCP servers", ""),
        (
            "one MCP server taking 5 s to start",
            r#"slow: { command: "bash", args: ["-c", "sleep 5; exec mcp-server-time"], env: { PATH: "/usr/bin:/bin" } }"#,
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..3 {
            let model = FakeModel::start().await;
            let tg = FakeTelegram::start().await;
            let gw = gateway_with(&model, &tg, mcp).await;
            let t0 = gw.spawned_at.expect("spawned");
            let first = loop {
                if let Some(t) = tg.first_poll() {
                    break t;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            samples.push(ms(first.duration_since(t0)));
            drop(gw);
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "start → first getUpdates, {label}: median {:.2} ms (of {:?})",
            samples[1], samples
        );
    }
}

async fn web_fetch_big() {
    let site = FakeSite::start("127.0.0.1").await;
    let web = switchboard::tools::web::Web::new(&WebConfig {
        allow_private: true,
        ..WebConfig::default()
    });
    let url = format!("{}/big", site.url);
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..6 {
        let t = Instant::now();
        let out = web
            .run("web_fetch", &json!({ "url": url, "max_chars": 200000 }))
            .await;
        let e = t.elapsed();
        assert!(!out.is_error, "{}", &out.text[..200.min(out.text.len())]);
        size = out.text.len();
        if i > 0 {
            times.push(e); // the first builds the client
        }
    }
    times.sort();
    let page = support::fake_web::big_page(1024 * 1024).len();
    println!(
        "web_fetch of a {:.2} MB HTML page: median {:.1} ms, text returned {} KB (capped at 200,000 characters)",
        page as f64 / 1e6,
        ms(times[times.len() / 2]),
        size / 1024
    );
}

async fn photo_intake() {
    // A noisy 4000×3000 JPEG of about 10 MB, as a phone camera sends.
    let mut seed = 7u32;
    let img = image::RgbImage::from_fn(4000, 3000, |_, _| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        image::Rgb([(seed >> 16) as u8, (seed >> 8) as u8, seed as u8])
    });
    // The highest quality that stays near 10 MB (noise compresses little).
    let mut jpeg = Vec::new();
    for q in [100, 95, 90, 85, 80, 70, 60, 50] {
        jpeg.clear();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, q)
            .encode_image(&img)
            .expect("encode");
        if jpeg.len() <= 12 << 20 {
            break;
        }
    }
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = gateway_with(&model, &tg, "").await;
    let pid = gw.pid().expect("pid");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib(pid);
    let size = jpeg.len() as u64;
    let t = Instant::now();
    tg.photo(111, "big", jpeg, size, "what is this?");
    model.wait_requests(1).await;
    let took = t.elapsed();
    let peak = common::peak_rss_mib(pid);
    tg.wait_sent(|s| !s.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "10 MB photo ({:.1} MB JPEG, 4000×3000) on Telegram: in the model's hands after {:.0} ms; gateway RSS {before:.1} MiB before, peak {peak:.1} MiB, {:.1} MiB 3 s after",
        size as f64 / 1_048_576.0,
        ms(took),
        rss_mib(pid),
    );
    if std::env::var_os("BENCH_SMAPS").is_some() {
        println!("{}", common::smaps_summary(pid));
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var("BENCH_ONLY").as_deref() == Ok("photo") {
        photo_intake().await;
        return;
    }
    if !have("mcp-server-everything") || !have("mcp-server-time") {
        eprintln!(
            "tools bench: mcp-server-everything / mcp-server-time are not on PATH; run it through `bash scripts/dev.sh bench`"
        );
        web_fetch_big().await;
        photo_intake().await;
        return;
    }
    call_overhead(
        "stdio (server-everything)",
        McpServerConfig {
            command: Some("mcp-server-everything".into()),
            enabled: true,
            timeout_seconds: 60,
            ..McpServerConfig::default()
        },
    )
    .await;
    let http = HttpEverything::start(free_port()).await;
    call_overhead(
        "streamable HTTP (server-everything)",
        McpServerConfig {
            url: Some(http.url.clone()),
            enabled: true,
            timeout_seconds: 60,
            ..McpServerConfig::default()
        },
    )
    .await;
    idle_rss(&http.url).await;
    start_with_slow_server().await;
    web_fetch_big().await;
    photo_intake().await;
}
