//! MCP servers through the running gateway, with real servers nobody here wrote:
//! `mcp-server-time` (PyPI, stdio) and `@modelcontextprotocol/server-everything` (npm, stdio and
//! streamable HTTP). The fake model scripts the tool calls; the assertions are on what the model
//! was offered and given back, and on what the chat received.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::gateway::{config_text, free_port};
use crate::support::mcp::{HttpEverything, available, children_of};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls `mcp list --json` until every server in `names` is ready; returns the list.
async fn wait_ready(gw: &TestGateway, names: &[&str]) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let out = gw.cli(&["mcp", "list", "--json"]).await;
        if let Ok(v) = serde_json::from_str::<Value>(&stdout(&out)) {
            let ready = names.iter().all(|n| {
                v["servers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["name"] == *n && s["status"] == "ready")
            });
            if ready {
                return v;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "MCP servers {names:?} never became ready: {last}\n{}",
        gw.log()
    );
}

fn server<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no server {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_turn_calls_mcp_tools_and_answers_with_their_results() {
    if !available("mcp-server-time", "mcp telegram turn")
        || !available("mcp-server-everything", "mcp telegram turn")
    {
        return;
    }
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    // Our own environment holds a secret the child must never see.
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},
               mcp: {{ servers: {{
                 time: {{ command: "mcp-server-time" }},
                 every: {{ command: "mcp-server-everything", env: {{ GREETING: "hello from config" }} }},
               }} }},"#,
            tg.url
        ),
    )
    .await;
    let list = wait_ready(&gw, &["time", "every"]).await;
    // server-everything registers more tools once initialized and says so with
    // notifications/tools/list_changed: the list is fetched again.
    for _ in 0..200 {
        if gw.log().contains("MCP tools changed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gw.log().contains("MCP tools changed"), "{}", gw.log());
    let tools = server(&list, "time")["tools"].clone();
    assert!(
        tools
            .as_array()
            .unwrap()
            .contains(&json!("get_current_time")),
        "{list}"
    );

    model.on(
        Some("time"),
        Reply::Tool {
            name: "time__get_current_time".into(),
            input: json!({ "timezone": "Asia/Tokyo" }),
        },
    );
    model.on(
        Some("time"),
        Reply::Tool {
            name: "every__get-tiny-image".into(),
            input: json!({}),
        },
    );
    model.on(
        Some("time"),
        Reply::Tool {
            name: "every__get-env".into(),
            input: json!({}),
        },
    );
    model.on(Some("time"), Reply::Text("It is evening in Tokyo.".into()));
    tg.dm(111, "what time is it in Tokyo?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].text, "It is evening in Tokyo.");

    let reqs = model.wait_requests(4).await;
    let first = &reqs[reqs.len() - 4];
    let offered = first.tool_names();
    assert!(
        offered.contains(&"time__get_current_time".to_string())
            && offered.contains(&"every__echo".to_string()),
        "{offered:?}"
    );
    // The tool's own JSON schema is passed on.
    let spec = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "time__get_current_time")
        .unwrap();
    assert!(
        spec["input_schema"]["properties"]["timezone"].is_object(),
        "{spec}"
    );
    let last = &reqs[reqs.len() - 1];
    let results = last.tool_results();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(
        results[0].contains("Asia/Tokyo") && results[0].contains("datetime"),
        "{}",
        results[0]
    );
    assert!(
        results[0].starts_with("<untrusted source=\"mcp:time/get_current_time\">"),
        "tool output is marked as data: {}",
        results[0]
    );
    // The image reaches the (vision) model as an image block, not as base64 text.
    let image = last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .nth(1)
        .unwrap();
    let parts = image["content"]
        .as_array()
        .expect("content list with image");
    assert!(
        parts
            .iter()
            .any(|p| p["type"] == "image" && p["source"]["media_type"] == "image/png"),
        "{image}"
    );
    // The child got the env it was given, PATH and HOME, and none of ours.
    let env = &results[2];
    assert!(env.contains("hello from config"), "{env}");
    assert!(env.contains("PATH"), "{env}");
    assert!(
        !env.contains("SECRET"),
        "our secrets leaked to the MCP server: {env}"
    );
    assert!(!env.contains("SWITCHBOARD"), "{env}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_is_restarted_and_the_next_call_works() {
    if !available("mcp-server-everything", "mcp restart") {
        return;
    }
    let model = FakeModel::start().await;
    let gw = TestGateway::start(
        &model,
        r#"mcp: { servers: { every: { command: "mcp-server-everything" } } },"#,
    )
    .await;
    wait_ready(&gw, &["every"]).await;
    model.on(
        Some("echo one"),
        Reply::Tool {
            name: "every__echo".into(),
            input: json!({ "message": "first" }),
        },
    );
    model.on(Some("echo one"), Reply::Text("done one".into()));
    assert_eq!(gw.chat("c1", "echo one").await, "done one");

    let pid = gw.pid().unwrap();
    let children = children_of(pid, "mcp-server-everything");
    assert_eq!(children.len(), 1, "one child server: {children:?}");
    let _ = std::process::Command::new("kill")
        .args(["-9", &children[0].to_string()])
        .status();
    // It comes back on its own, with a restart counted and the reason kept.
    let mut restarted = Value::Null;
    for _ in 0..200 {
        let list = wait_ready(&gw, &["every"]).await;
        if server(&list, "every")["restarts"].as_u64().unwrap_or(0) >= 1 {
            restarted = list;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!restarted.is_null(), "never restarted\n{}", gw.log());
    let again = children_of(pid, "mcp-server-everything");
    assert!(again.len() == 1 && again[0] != children[0], "{again:?}");

    model.on(
        Some("echo two"),
        Reply::Tool {
            name: "every__echo".into(),
            input: json!({ "message": "second" }),
        },
    );
    model.on(Some("echo two"), Reply::Text("done two".into()));
    assert_eq!(gw.chat("c1", "echo two").await, "done two");
    let reqs = model.requests();
    let results = reqs.last().unwrap().tool_results();
    assert!(
        results.last().unwrap().contains("Echo: second"),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_starts_gives_a_tool_error_and_the_gateway_stays_up() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(
        &model,
        r#"mcp: { servers: { broken: { command: "/nonexistent/mcp-server" } } },"#,
    )
    .await;
    model.on(
        Some("use broken"),
        Reply::Tool {
            name: "broken__do_it".into(),
            input: json!({}),
        },
    );
    model.on(Some("use broken"), Reply::Text("it is down, sorry".into()));
    assert_eq!(gw.chat("c1", "use broken").await, "it is down, sorry");
    let results = model.requests().last().unwrap().tool_results();
    assert!(
        results[0].contains("MCP server `broken` is unavailable"),
        "{results:?}"
    );
    // `mcp list` names the failure; the gateway keeps serving.
    let mut listed = String::new();
    for _ in 0..100 {
        listed = stdout(&gw.cli(&["mcp", "list"]).await);
        if listed.contains("cannot start") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        listed.contains("broken") && listed.contains("cannot start `/nonexistent/mcp-server`"),
        "{listed}"
    );
    assert!(gw.running());
    model.on(Some("still there"), Reply::Text("yes".into()));
    assert_eq!(gw.chat("c1", "still there?").await, "yes");
    let out = gw.cli(&["mcp", "test", "broken"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("broken"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_and_deny_lists_choose_tools_per_agent() {
    if !available("mcp-server-time", "mcp allow/deny") {
        return;
    }
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(
        &model.url,
        port,
        &dir.path().join("state"),
        r#"mcp: { servers: { time: { command: "mcp-server-time" } } },
           routing: [ { match: { channel: "local", chat: "clu-chat" }, agent: "clu" } ],"#,
    )
    .replace(
        r#"agents: { jarvis: { coordinator: true }, clu: { model: "coding" } },"#,
        r#"agents: { jarvis: { coordinator: true, tools: { deny: ["mcp:time/*", "web_*"] } },
                     clu: { model: "coding", tools: { allow: ["mcp:time/get_*", "remember"] } } },"#,
    );
    assert!(text.contains("mcp:time/get_*"));
    let gw = TestGateway::start_in(dir, port, &text).await;
    wait_ready(&gw, &["time"]).await;

    model.on(
        Some("jarvis time"),
        Reply::Tool {
            name: "time__get_current_time".into(),
            input: json!({ "timezone": "UTC" }),
        },
    );
    model.on(Some("jarvis time"), Reply::Text("no clock for me".into()));
    assert_eq!(gw.chat("j-chat", "jarvis time").await, "no clock for me");
    let reqs = model.requests();
    let jarvis = &reqs[reqs.len() - 2];
    let names = jarvis.tool_names();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("time__") || n.starts_with("web_")),
        "{names:?}"
    );
    assert!(names.contains(&"remember".to_string()), "{names:?}");
    let denied = reqs.last().unwrap().tool_results();
    assert!(denied[0].contains("not available"), "{denied:?}");

    model.on(
        Some("clu time"),
        Reply::Tool {
            name: "time__get_current_time".into(),
            input: json!({ "timezone": "UTC" }),
        },
    );
    model.on(Some("clu time"), Reply::Text("noon".into()));
    assert_eq!(gw.chat("clu-chat", "clu time").await, "noon");
    let reqs = model.requests();
    let clu = &reqs[reqs.len() - 2];
    let mut names = clu.tool_names();
    names.sort();
    assert_eq!(names, vec!["remember", "time__get_current_time"]);
    let results = reqs.last().unwrap().tool_results();
    assert!(results[0].contains("\"timezone\": \"UTC\""), "{results:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamable_http_server_is_used_and_tested_from_the_cli() {
    if !available("mcp-server-everything", "mcp streamable http") {
        return;
    }
    let remote = HttpEverything::start(free_port()).await;
    assert!(remote.pid().is_some());
    let model = FakeModel::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"mcp: {{ servers: {{ remote: {{ url: "{}", headers: {{ "X-Test": "yes" }} }} }} }},"#,
            remote.url
        ),
    )
    .await;
    let list = wait_ready(&gw, &["remote"]).await;
    assert_eq!(server(&list, "remote")["transport"], "http");
    model.on(
        Some("add"),
        Reply::Tool {
            name: "remote__get-sum".into(),
            input: json!({ "a": 2, "b": 40 }),
        },
    );
    model.on(Some("add"), Reply::Text("42".into()));
    assert_eq!(gw.chat("c1", "add 2 and 40").await, "42");
    let results = model.requests().last().unwrap().tool_results();
    assert!(results[0].contains("42"), "{results:?}");

    // `mcp test` through the running gateway…
    let out = gw.cli(&["mcp", "test", "remote"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("get-sum"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_test_starts_a_server_once_when_the_gateway_is_down() {
    if !available("mcp-server-time", "mcp test offline") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json5");
    std::fs::write(
        &config,
        format!(
            r#"{{ stateDir: "{}", gateway: {{ port: {} }},
                 providers: {{ a: {{ apiKey: "k" }} }}, models: {{ default: "a/m" }},
                 mcp: {{ servers: {{ time: {{ command: "mcp-server-time" }} }} }} }}"#,
            dir.path().join("state").display(),
            free_port()
        ),
    )
    .unwrap();
    let out = gateway::run_cli(&config, &["mcp", "test", "time", "--json"], "").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["status"], "ready");
    assert!(
        v["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("convert_time")),
        "{v}"
    );
    let out = gateway::run_cli(&config, &["mcp", "list", "--json"], "").await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["gateway"], false);
    assert_eq!(v["servers"][0]["name"], "time");
    let out = gateway::run_cli(&config, &["mcp", "test", "nope"], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no MCP server named `nope`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_the_servers_timeout_is_a_tool_error() {
    if !available("mcp-server-everything", "mcp call timeout") {
        return;
    }
    let model = FakeModel::start().await;
    let gw = TestGateway::start(
        &model,
        r#"mcp: { servers: { every: { command: "mcp-server-everything", timeoutSeconds: 1 } } },"#,
    )
    .await;
    wait_ready(&gw, &["every"]).await;
    model.on(
        Some("slow"),
        Reply::Tool {
            name: "every__trigger-long-running-operation".into(),
            input: json!({ "duration": 10, "steps": 2 }),
        },
    );
    model.on(Some("slow"), Reply::Text("it took too long".into()));
    assert_eq!(gw.chat("c1", "do the slow thing").await, "it took too long");
    let results = model.requests().last().unwrap().tool_results();
    assert!(
        results[0].contains("did not answer within 1s"),
        "{results:?}"
    );
    // The server is still usable afterwards.
    model.on(
        Some("echo"),
        Reply::Tool {
            name: "every__echo".into(),
            input: json!({ "message": "still here" }),
        },
    );
    model.on(Some("echo"), Reply::Text("ok".into()));
    assert_eq!(gw.chat("c1", "echo please").await, "ok");
    let results = model.requests().last().unwrap().tool_results();
    assert!(
        results.last().unwrap().contains("Echo: still here"),
        "{results:?}"
    );
}
