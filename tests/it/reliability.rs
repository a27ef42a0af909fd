use crate::support::*;
use std::time::Duration;

/// Waits until every stored inbound message is answered and every reply delivered.
async fn wait_all_delivered(gw: &TestGateway, expected_inbox: i64) {
    for _ in 0..400 {
        let db = gw.db();
        let q = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        let inbox = q("SELECT count(*) FROM inbox");
        let pending = q("SELECT count(*) FROM inbox WHERE status != 'done'");
        let unsent = q("SELECT count(*) FROM outbox WHERE status != 'sent'");
        if inbox == expected_inbox && pending == 0 && unsent == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not everything was answered and delivered:\n{}", gw.log());
}

/// Each inbound message has exactly one reply row.
fn one_reply_each(gw: &TestGateway) {
    let db = gw.db();
    let mut st = db
        .prepare(
            "SELECT i.id, (SELECT count(*) FROM outbox o WHERE o.dedupe_key = 'reply:' || i.id)
             FROM inbox i",
        )
        .unwrap();
    let rows: Vec<(i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!rows.is_empty());
    for (id, n) in rows {
        assert_eq!(n, 1, "inbox {id} has {n} replies");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_loses_nothing() {
    let model = FakeModel::start().await;
    for _ in 0..3 {
        model.on(
            Some("slow"),
            Reply::Delay(
                Duration::from_millis(700),
                Box::new(Reply::Text("slow done".into())),
            ),
        );
    }
    let mut gw = TestGateway::start(&model, "").await;
    let url = gw.url.clone();
    let mut clients = Vec::new();
    // Three chats with one message each, and a second message queued behind the first in chat 0.
    for (chat, text) in [
        ("c0", "slow 0"),
        ("c1", "slow 1"),
        ("c2", "slow 2"),
        ("c0", "after slow"),
    ] {
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/chat"))
                .json(&serde_json::json!({ "chat": chat, "text": text }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    model.wait_requests(3).await;
    let status = gw.stop("TERM").await;
    assert!(status.success(), "graceful exit: {status}\n{}", gw.log());
    for c in clients {
        // Each waiting client got its reply or a clear 503; none was left hanging.
        let code = c.await.unwrap().unwrap_or(0);
        assert!(code == 200 || code == 503, "status {code}");
    }
    assert!(gw.log().contains("shutting down"));
    gw.restart().await;
    wait_all_delivered(&gw, 4).await;
    one_reply_each(&gw);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_turn_is_answered_once_after_restart() {
    let model = FakeModel::start().await;
    let gate = Gate::default();
    model.on(
        Some("crashy"),
        Reply::Hold(gate, Box::new(Reply::Text("first try".into()))),
    );
    let mut gw = TestGateway::start(&model, "").await;
    let url = gw.url.clone();
    let client = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/v1/chat"))
            .json(&serde_json::json!({ "chat": "k", "text": "crashy" }))
            .send()
            .await
            .is_ok()
    });
    model.wait_requests(1).await;
    gw.stop("KILL").await;
    let _ = client.await;
    gw.restart().await;
    let msgs = gw.wait_messages("k", |m| !m.is_empty()).await;
    assert_eq!(msgs, vec!["echo: crashy"]);
    wait_all_delivered(&gw, 1).await;
    one_reply_each(&gw);
    // The half-finished turn was discarded: the session holds the message once.
    let n: i64 = gw
        .db()
        .query_row("SELECT count(*) FROM turns WHERE role = 'user'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn model_errors_become_a_specific_reply_and_429_is_retried() {
    let model = FakeModel::start().await;
    model.on(
        Some("first"),
        Reply::Status {
            code: 401,
            retry_after: None,
            body: "{\"error\":\"invalid x-api-key\"}".into(),
        },
    );
    model.on(
        Some("second"),
        Reply::Status {
            code: 429,
            retry_after: Some(1),
            body: "{}".into(),
        },
    );
    model.on(Some("second"), Reply::Text("after waiting".into()));
    let gw = TestGateway::start(&model, "").await;
    let r = gw.chat("e", "first").await;
    assert_eq!(
        r,
        "⚠️ I couldn't get an answer. anthropic: authentication failed (401)"
    );
    assert_eq!(gw.chat("e", "second").await, "after waiting");
    assert_eq!(model.requests().len(), 3);
    // Secrets never reach the logs, even at debug level.
    let log = gw.log();
    assert!(log.contains("model failed"), "{log}");
    assert!(!log.contains("SECRET"), "a key leaked into the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_posts_to_a_local_chat_and_rejects_bad_targets() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    let out = gw
        .cli(&["send", "--to", "local:inbox", "hello", "world"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = gw.wait_messages("inbox", |m| !m.is_empty()).await;
    assert_eq!(msgs, vec!["hello world"]);
    let out = gw.cli(&["send", "--to", "telegram:42", "hi"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("telegram channel is not enabled"),
        "{}",
        stderr(&out)
    );
    let out = gw.cli(&["send", "--to", "nowhere", "hi"]).await;
    assert!(
        stderr(&out).contains("invalid target `nowhere`"),
        "{}",
        stderr(&out)
    );
}
