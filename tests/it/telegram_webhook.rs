//! Telegram in webhook mode: `setWebhook` with the secret at start (no polling), updates posted
//! to the gateway's own path answered 200 only once stored, a missing or wrong secret refused,
//! a retried update answered once, and a webhook path the gateway already serves refused by
//! the config check; and back in polling mode, the webhook left is deleted before polling.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::gateway::{config_text, free_port, run_cli};
use crate::support::{FakeModel, TestGateway};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "hook-secret_0123456789";

fn update(id: i64, user: i64, text: &str) -> serde_json::Value {
    json!({ "update_id": id, "message": {
        "message_id": 500 + id, "date": 1_700_000_000,
        "chat": { "id": user, "type": "private", "first_name": "Webhook" },
        "from": { "id": user, "is_bot": false, "first_name": "Webhook" },
        "text": text
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_arrive_by_webhook_with_the_secret_checked_and_are_answered_once() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/telegram/hook");
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open",
             webhook: {{ url: "{hook}", secret: "{SECRET}" }} }} }},"#,
        tg.url
    );
    let text = config_text(&model.url, port, &dir.path().join("state"), &extra);
    let gw = TestGateway::start_in(dir, port, &text).await;
    for _ in 0..200 {
        if !tg.webhooks().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(tg.webhooks(), vec![(hook.clone(), SECRET.to_string())]);

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let post = |secret: Option<&str>, body: String| {
        let mut req = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        async move { req.send().await.expect("post").status().as_u16() }
    };
    let first = update(1, 77, "hello by webhook").to_string();
    assert_eq!(post(None, first.clone()).await, 401);
    assert_eq!(post(Some("not-the-secret"), first.clone()).await, 401);
    assert_eq!(post(Some(SECRET), first.clone()).await, 200);
    let sent = tg.wait_sent(|s| s.iter().any(|m| m.chat_id == 77)).await;
    assert!(
        sent.iter()
            .any(|m| m.chat_id == 77 && m.text.contains("echo: hello by webhook")),
        "{:?}",
        sent.iter().map(|m| &m.text).collect::<Vec<_>>()
    );
    // Telegram sends an update again when it saw no 200 in time: it is answered once.
    assert_eq!(post(Some(SECRET), first).await, 200);
    assert_eq!(post(Some(SECRET), "{not json".into()).await, 200);
    assert_eq!(
        post(Some(SECRET), update(2, 77, "second").to_string()).await,
        200
    );
    tg.wait_sent(|s| s.iter().any(|m| m.text.contains("echo: second")))
        .await;
    assert_eq!(
        tg.sent_to(77)
            .iter()
            .filter(|m| m.text.contains("hello by webhook"))
            .count(),
        1,
        "a retried update was answered twice"
    );
    // Webhook mode never polls (getUpdates would fail while a webhook is set).
    assert!(
        tg.first_poll().is_none(),
        "the gateway polled in webhook mode"
    );
    let status = gw.cli(&["gateway", "status"]).await;
    assert!(
        crate::support::stdout(&status).contains("telegram"),
        "{}",
        crate::support::stdout(&status)
    );
    assert!(
        !gw.log().contains(SECRET),
        "the webhook secret reached the log"
    );

    // A webhook path the gateway serves itself is refused, by name.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = config_text(
        &model.url,
        free_port(),
        &dir.path().join("state"),
        r#"channels: { telegram: { token: "1:X", webhook: { url: "https://bot.example.com/v1/status", secret: "s" } } },"#,
    );
    let cfg = dir.path().join("config.json5");
    std::fs::write(&cfg, bad).expect("config");
    let out = run_cli(&cfg, &["config", "validate"], "").await;
    assert_eq!(out.status.code(), Some(2));
    let err = crate::support::stderr(&out);
    assert!(err.contains("channels.telegram.webhook.url"), "{err}");
}

/// Back to polling after a run in webhook mode: Telegram refuses getUpdates while a webhook is
/// set, so the gateway deletes the one left before it polls, and messages are answered.
#[tokio::test(flavor = "multi_thread")]
async fn polling_after_webhook_mode_deletes_the_webhook_left_and_answers() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    tg.leave_webhook("https://bot.example.com/telegram/hook");
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
        tg.url
    );
    let _gw = TestGateway::start(&model, &extra).await;
    tg.dm(78, "hello by polling");
    let sent = tg
        .wait_sent(|s| s.iter().any(|m| m.text.contains("echo: hello by polling")))
        .await;
    assert!(
        sent.iter()
            .any(|m| m.chat_id == 78 && m.text.contains("echo: hello by polling")),
        "not answered after the webhook was left set: {sent:?}"
    );
    let calls = tg.calls_by_method();
    assert_eq!(calls.get("deletewebhook"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("getme"), Some(&1), "{calls:?}");
}
