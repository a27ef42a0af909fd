//! `/stop`: answered at once (beside the chat's queue, not behind the turn it stops), ends the
//! running turn — the model call or the tool in progress — keeps what the turn had in the
//! session, and the chat goes on.

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_a_turn_waiting_on_the_model_and_answers_at_once() {
    let (model, tg, _gw) = telegram_gateway("").await;
    let gate = Gate::default();
    model.on(
        Some("essay"),
        Reply::Hold(
            gate.clone(),
            Box::new(Reply::Text("a very long essay".into())),
        ),
    );
    tg.dm(111, "write me an essay");
    model.wait_requests(1).await;
    tg.dm(111, "/stop");
    let sent = tg
        .wait_sent(|s| s.iter().any(|m| m.text == "⏹ Stopped."))
        .await;
    let texts: Vec<&str> = sent.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        vec!["⏹ Stopping the answer in progress.", "⏹ Stopped."],
        "the stop is answered first, then the stopped turn"
    );
    // Nothing is running now; the chat carries on with the stopped request in its history.
    tg.dm(111, "/stop");
    tg.wait_sent(|s| {
        s.iter()
            .any(|m| m.text == "Nothing is running in this chat.")
    })
    .await;
    tg.dm(111, "hello again");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: hello again"))
        .await;
    let history = model.requests().last().unwrap().transcript();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0], "write me an essay");
    assert!(history[1].contains("stopped"), "{history:?}");
    assert_eq!(history[2], "hello again");
    gate.open();
    assert!(!tg.sent().iter().any(|m| m.text == "a very long essay"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_cancels_a_running_tool_and_keeps_the_history_whole() {
    let (model, tg, _gw) = telegram_gateway(
        r#"tools: { exec: { enabled: true, allow: ["sleep"], sandbox: "none", timeoutSeconds: 60 }, approve: [] },"#,
    )
    .await;
    model.on(
        Some("wait a minute"),
        Reply::Tool {
            name: "exec".into(),
            input: json!({ "command": "sleep 60" }),
        },
    );
    tg.dm(111, "wait a minute");
    // The exec is running once the model has answered with it.
    model.wait_requests(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tg.dm(111, "/stop");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "⏹ Stopped."))
        .await;
    tg.dm(111, "next");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: next"))
        .await;
    let last = model.requests().last().unwrap().clone();
    let results = last.tool_results();
    assert_eq!(results.len(), 1, "the call keeps its result: {results:?}");
    assert!(results[0].contains("stopped this turn"), "{results:?}");
    assert_eq!(model.requests().len(), 2, "no model call after the stop");
}
