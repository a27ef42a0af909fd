//! Approvals for tools in `tools.approve`, through the running gateway and real channel clients:
//! approved by button on Telegram (a stranger's press ignored), denied by button on Discord, no
//! answer is a denial, a restart while pending does not run the tool, and the terminal can
//! answer. A web page that tells the agent to run exec cannot get past the question either.

use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::fake_web::FakeSite;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

fn exec(command: &str) -> Reply {
    Reply::Tool {
        name: "exec".into(),
        input: json!({ "command": command }),
    }
}

const EXEC: &str =
    r#"tools: { exec: { enabled: true, allow: ["echo", "touch"], sandbox: "none" } },"#;

fn telegram(tg: &FakeTelegram) -> String {
    format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }}, {EXEC}"#,
        tg.url
    )
}

/// The callback data of the button labelled `label` under a sent message.
fn button(markup: &Value, label: &str) -> String {
    markup["inline_keyboard"][0]
        .as_array()
        .and_then(|row| row.iter().find(|b| b["text"] == label))
        .and_then(|b| b["callback_data"].as_str())
        .unwrap_or_else(|| panic!("no {label} button in {markup}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_by_button_on_telegram_and_a_strangers_press_is_ignored() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(&model, &telegram(&tg)).await;
    model.on(Some("say hi"), exec("echo approved-and-ran"));
    model.on(Some("say hi"), Reply::Text("done".into()));
    tg.dm(111, "say hi with exec");

    let sent = tg.wait_sent(|s| s.iter().any(|m| m.markup.is_some())).await;
    let q = sent.iter().find(|m| m.markup.is_some()).unwrap().clone();
    assert_eq!(q.chat_id, 111);
    assert!(
        q.text.contains("wants to run <code>exec</code>"),
        "{}",
        q.text
    );
    assert!(q.text.contains("echo approved-and-ran"), "{}", q.text);
    let markup = q.markup.clone().unwrap();
    let approve = button(&markup, "Approve");
    button(&markup, "Deny");
    button(&markup, "Allow for this session");

    // Someone else presses Approve: told no, nothing runs.
    let stranger = tg.press(111, 222, q.id, &approve);
    for _ in 0..200 {
        if tg.answers().iter().any(|(id, _)| *id == stranger) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answers = tg.answers();
    let (_, notice) = answers.iter().find(|(id, _)| *id == stranger).unwrap();
    assert!(
        notice
            .as_deref()
            .unwrap_or("")
            .contains("Only the person who asked"),
        "{notice:?}"
    );
    assert_eq!(
        model.requests().len(),
        1,
        "the tool ran on a stranger's press"
    );
    assert!(tg.sent_to(111).iter().all(|m| m.text != "done"));

    // The person who asked approves: the tool runs, the answer comes, the buttons go.
    let mine = tg.press(111, 111, q.id, &approve);
    let sent = tg.wait_sent(|s| s.iter().any(|m| m.text == "done")).await;
    assert!(sent.iter().any(|m| m.text == "done"));
    let results = model.requests().last().unwrap().tool_results();
    assert!(results[0].contains("approved-and-ran"), "{results:?}");
    let answers = tg.answers();
    let (_, notice) = answers.iter().find(|(id, _)| *id == mine).unwrap();
    assert!(
        notice.as_deref().unwrap_or("").starts_with("Approved"),
        "{notice:?}"
    );
    let edits = tg.edits();
    assert!(
        edits.iter().any(|e| e.message_id == q.id
            && e.markup.is_none()
            && e.text.contains("Approved by User111")),
        "{edits:?}"
    );
    // Pressing again changes nothing.
    let again = tg.press(111, 111, q.id, &approve);
    for _ in 0..200 {
        if tg.answers().iter().any(|(id, _)| *id == again) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answers = tg.answers();
    let (_, notice) = answers.iter().find(|(id, _)| *id == again).unwrap();
    assert!(
        notice.as_deref().unwrap_or("").contains("already approved"),
        "{notice:?}"
    );
    drop(gw);
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_for_this_session_stops_asking_in_that_session() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let _gw = TestGateway::start(&model, &telegram(&tg)).await;
    model.on(Some("first"), exec("echo one"));
    model.on(Some("first"), Reply::Text("one done".into()));
    model.on(Some("second"), exec("echo two"));
    model.on(Some("second"), Reply::Text("two done".into()));
    tg.dm(111, "first");
    let sent = tg.wait_sent(|s| s.iter().any(|m| m.markup.is_some())).await;
    let q = sent.iter().find(|m| m.markup.is_some()).unwrap().clone();
    tg.press(
        111,
        111,
        q.id,
        &button(q.markup.as_ref().unwrap(), "Allow for this session"),
    );
    tg.wait_sent(|s| s.iter().any(|m| m.text == "one done"))
        .await;
    tg.dm(111, "second");
    let sent = tg
        .wait_sent(|s| s.iter().any(|m| m.text == "two done"))
        .await;
    assert_eq!(
        sent.iter()
            .filter(|m| m.markup.is_some()
                || m.text.contains("wants to run")
                || m.text.contains("for the rest of this session"))
            .count(),
        1,
        "asked once for the session"
    );
    let results = model.requests().last().unwrap().tool_results();
    assert!(results.last().unwrap().contains("two"), "{results:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_by_button_on_discord() {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "open" }} }}, {EXEC}"#,
            d.api_url
        ),
    )
    .await;
    d.wait_until("the bot to identify", |d| {
        d.identifies() >= 1 && d.connected()
    })
    .await;
    model.on(Some("make a file"), exec("touch denied-marker"));
    model.on(Some("make a file"), Reply::Text("ok, I won't".into()));
    d.message(500_042, None, 42, "make a file please", false);
    let sent = d
        .wait_sent(|s| s.iter().any(|m| m.components.is_array()))
        .await;
    let q = sent
        .iter()
        .find(|m| m.components.is_array())
        .unwrap()
        .clone();
    assert!(q.content.contains("wants to run `exec`"), "{}", q.content);
    let row = &q.components[0]["components"];
    let deny = row
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["label"] == "Deny")
        .unwrap();
    assert_eq!(deny["style"], 4);
    let interaction = d.press(
        q.channel,
        None,
        42,
        q.id,
        deny["custom_id"].as_str().unwrap(),
    );
    let sent = d
        .wait_sent(|s| s.iter().any(|m| m.content == "ok, I won't"))
        .await;
    assert!(sent.iter().any(|m| m.content == "ok, I won't"));
    let results = model.requests().last().unwrap().tool_results();
    assert!(results[0].contains("denied running `exec`"), "{results:?}");
    assert!(!gw.workspace("jarvis").join("denied-marker").exists());
    let answers = d.interaction_answers();
    let a = answers
        .iter()
        .find(|a| a.interaction == interaction)
        .unwrap();
    assert!(
        a.ephemeral && a.content.as_deref().unwrap_or("").starts_with("Denied"),
        "{a:?}"
    );
    let edited = d.sent().into_iter().find(|m| m.id == q.id).unwrap();
    assert!(
        edited.content.contains("Denied by User 42"),
        "{}",
        edited.content
    );
    assert_eq!(edited.components, json!([]), "buttons removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_in_time_is_a_denial_the_model_is_told_about() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(
        &model,
        r#"tools: { exec: { enabled: true, allow: ["touch"], sandbox: "none" }, approvalTimeoutSeconds: 1 },"#,
    )
    .await;
    model.on(Some("touch it"), exec("touch timeout-marker"));
    model.on(Some("touch it"), Reply::Text("nobody answered".into()));
    assert_eq!(gw.chat("c1", "touch it").await, "nobody answered");
    let results = model.requests().last().unwrap().tool_results();
    assert!(
        results[0].contains("nobody answered the approval request"),
        "{results:?}"
    );
    assert!(!gw.workspace("jarvis").join("timeout-marker").exists());
    // The local chat has no buttons: it was asked in text naming the CLI.
    let msgs = gw.messages("c1", 0).await;
    assert!(
        msgs.iter()
            .any(|m| m.contains("switchboard approvals approve")),
        "{msgs:?}"
    );
    let out = gw.cli(&["approvals", "list", "--all", "--json"]).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["status"], "expired", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_while_pending_runs_nothing_until_the_old_question_is_answered() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let mut gw = TestGateway::start(&model, &telegram(&tg)).await;
    // The turn will be handled twice (before and after the restart): script it twice.
    model.on(Some("mark it"), exec("touch restart-marker"));
    tg.dm(111, "mark it");
    let sent = tg.wait_sent(|s| s.iter().any(|m| m.markup.is_some())).await;
    let q = sent.iter().find(|m| m.markup.is_some()).unwrap().clone();
    gw.stop("KILL").await;
    assert!(!gw.workspace("jarvis").join("restart-marker").exists());
    // Still pending, as the terminal sees it with the gateway down.
    let out = gw.cli(&["approvals", "list", "--json"]).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["status"], "pending", "{v}");

    model.on(Some("mark it"), exec("touch restart-marker"));
    model.on(Some("mark it"), Reply::Text("marked".into()));
    gw.restart().await;
    // The re-run waits on the same question: nothing runs, nothing new is asked.
    model.wait_requests(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!gw.workspace("jarvis").join("restart-marker").exists());
    assert_eq!(
        tg.sent().iter().filter(|m| m.markup.is_some()).count(),
        1,
        "asked again after the restart"
    );
    tg.press(
        111,
        111,
        q.id,
        &button(q.markup.as_ref().unwrap(), "Approve"),
    );
    tg.wait_sent(|s| s.iter().any(|m| m.text == "marked")).await;
    assert!(gw.workspace("jarvis").join("restart-marker").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_cannot_talk_the_agent_into_running_exec_and_the_terminal_denies() {
    let site = FakeSite::start("127.0.0.1").await;
    let model = FakeModel::start().await;
    let gw = TestGateway::start(
        &model,
        r#"tools: { exec: { enabled: true, allow: ["touch"], sandbox: "none" }, web: { allowPrivate: true } },"#,
    )
    .await;
    // The (scripted) model reads a hostile page and does what it says.
    model.on(
        Some("summarise"),
        Reply::Tool {
            name: "web_fetch".into(),
            input: json!({ "url": format!("{}/ignore", site.url) }),
        },
    );
    model.on(Some("summarise"), exec("touch pwned"));
    model.on(Some("summarise"), Reply::Text("summary".into()));
    let approver = async {
        for _ in 0..400 {
            let out = gw.cli(&["approvals", "list", "--json"]).await;
            if let Ok(v) = serde_json::from_str::<Value>(&stdout(&out))
                && let Some(id) = v[0]["id"].as_i64()
            {
                assert_eq!(v[0]["tool"], "exec");
                let out = gw.cli(&["approvals", "deny", &id.to_string()]).await;
                assert!(out.status.success(), "{}", stderr(&out));
                assert!(stdout(&out).contains("Denied"), "{}", stdout(&out));
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no approval request appeared");
    };
    let (reply, ()) = tokio::join!(gw.chat("c1", "summarise the page"), approver);
    assert_eq!(reply, "summary");
    assert!(!gw.workspace("jarvis").join("pwned").exists());
    let results = model.requests().last().unwrap().tool_results();
    assert!(results[1].contains("denied"), "{results:?}");
}
