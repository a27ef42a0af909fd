//! `exec` through the running gateway: under bubblewrap a program cannot reach the network (not
//! even loopback), cannot write the system or read the state directory, and can write its own
//! workspace; unconfined, the same command connects (so the test would see a broken sandbox).

use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const PROBE: &str = "echo > /dev/tcp/127.0.0.1/@PORT@ && echo NET-CONNECTED || echo NET-BLOCKED; \
    touch \"$HOME/made-in-workspace\" && echo WS-WRITTEN; \
    cat @STATEDIR@/switchboard.db >/dev/null 2>&1 && echo STATE-READ || echo STATE-HIDDEN";
/// Only run confined: unconfined (and as root, as in CI) it would really write /etc.
const WRITE_ETC: &str =
    "; touch /etc/sandbox-escape 2>/dev/null && echo ETC-WRITTEN || echo ETC-READONLY";

async fn listener() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, n)
}

async fn run_probe(sandbox: &str) -> (String, usize, std::path::PathBuf) {
    let (port, accepted) = listener().await;
    let model = FakeModel::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"tools: {{ exec: {{ enabled: true, allow: ["bash"], sandbox: "{sandbox}", timeoutSeconds: 10 }}, approve: [] }},"#
        ),
    )
    .await;
    let state = gw.workspace("jarvis").join("../..");
    let state = state.canonicalize().unwrap();
    let probe = if sandbox == "bwrap" {
        format!("{PROBE}{WRITE_ETC}")
    } else {
        PROBE.to_string()
    };
    let script = probe
        .replace("@PORT@", &port.to_string())
        .replace("@STATEDIR@", &state.display().to_string());
    model.on(
        Some("probe"),
        Reply::Tool {
            name: "exec".into(),
            input: json!({ "command": format!("bash -c '{script}'") }),
        },
    );
    model.on(Some("probe"), Reply::Text("probed".into()));
    assert_eq!(gw.chat("c1", "probe the sandbox").await, "probed");
    let out = model.requests().last().unwrap().tool_results()[0].clone();
    let doctor = stdout(&gw.cli(&["doctor"]).await);
    let expected = if sandbox == "bwrap" {
        "exec sandbox: bubblewrap"
    } else {
        "exec sandbox: none"
    };
    assert!(doctor.contains(expected), "{doctor}");
    let ws = gw.workspace("jarvis");
    let written = ws.join("made-in-workspace").exists();
    assert!(written, "the workspace is writable: {out}");
    (out, accepted.load(Ordering::SeqCst), ws)
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_under_bubblewrap_has_no_network_and_a_read_only_system() {
    if !crate::support::mcp::available("bwrap", "exec sandbox") {
        return;
    }
    // Installed but unable to create namespaces here (some containers): nothing to test.
    let works = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-net", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!(
            "\n!!!!!!!! SKIPPING exec sandbox: bwrap cannot create namespaces on this machine\n"
        );
        return;
    }
    let (out, accepted, _) = run_probe("bwrap").await;
    assert!(out.contains("NET-BLOCKED"), "{out}");
    assert_eq!(accepted, 0, "the sandbox reached the network");
    assert!(out.contains("WS-WRITTEN"), "{out}");
    assert!(out.contains("ETC-READONLY"), "{out}");
    assert!(out.contains("STATE-HIDDEN"), "{out}");
    assert!(!std::path::Path::new("/etc/sandbox-escape").exists());

    // The control: unconfined, the same command does connect.
    let (out, accepted, _) = run_probe("none").await;
    assert!(out.contains("NET-CONNECTED"), "{out}");
    assert_eq!(accepted, 1);
    assert!(out.contains("STATE-READ"), "{out}");
}
