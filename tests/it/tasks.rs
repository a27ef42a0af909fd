use crate::support::fake_model::Format;
use crate::support::*;

fn count(msgs: &[String], needle: &str) -> usize {
    msgs.iter().filter(|m| m.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn task_runs_in_a_worker_and_reports_back_once() {
    let model = FakeModel::start().await;
    model.on(
        Some("summarize the report"),
        Reply::Text("Summary: all good".into()),
    );
    let gw = TestGateway::start(&model, "").await;
    let ack = gw.chat("t", "/task clu summarize the report").await;
    assert_eq!(ack, "Task #1 started with clu. I'll post the result here.");
    let msgs = gw
        .wait_messages("t", |m| count(m, "✅ Task #1 (clu) done") == 1)
        .await;
    assert!(
        msgs.iter()
            .any(|m| m == "✅ Task #1 (clu) done:\n\nSummary: all good"),
        "{msgs:?}"
    );
    // The worker used clu's model, in a fresh session (no chat history).
    let req = model
        .requests()
        .into_iter()
        .find(|r| r.last_user_text() == "summarize the report")
        .unwrap();
    assert!(matches!(req.format, Format::OpenAi));
    assert_eq!(req.transcript(), vec!["summarize the report"]);
    let out = gw.cli(&["tasks", "list", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tasks[0]["status"], "done");
    assert_eq!(tasks[0]["result"], "Summary: all good");
    // The requesting session got a note, so the coordinator knows what happened.
    gw.chat("t", "what did clu say?").await;
    let last = model.requests().pop().unwrap();
    assert!(
        last.transcript()
            .iter()
            .any(|t| t.contains("[Task #1 (clu) done: Summary: all good]")),
        "{:?}",
        last.transcript()
    );
    // Reported exactly once, even after more traffic in the chat.
    let msgs = gw.messages("t", 0).await;
    assert_eq!(count(&msgs, "✅ Task #1 (clu) done"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_can_be_cancelled_from_the_cli() {
    let model = FakeModel::start().await;
    let gate = Gate::default();
    model.on(
        Some("long job"),
        Reply::Hold(gate.clone(), Box::new(Reply::Text("late".into()))),
    );
    let gw = TestGateway::start(&model, "").await;
    gw.chat("t", "/task long job").await;
    model.wait_requests(1).await;
    let out = gw.cli(&["tasks", "cancel", "1"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Cancelling task #1.");
    let msgs = gw
        .wait_messages("t", |m| count(m, "Task #1 (jarvis) cancelled") == 1)
        .await;
    assert_eq!(count(&msgs, "done"), 0);
    gate.open();
    let out = gw.cli(&["tasks", "list", "--json"]).await;
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tasks[0]["status"], "cancelled");
    // Cancelling again says why not.
    let out = gw.cli(&["tasks", "cancel", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already cancelled"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_interrupted_by_a_crash_is_reported_after_restart() {
    let model = FakeModel::start().await;
    let gate = Gate::default();
    model.on(
        Some("big job"),
        Reply::Hold(gate, Box::new(Reply::Text("never".into()))),
    );
    let mut gw = TestGateway::start(&model, "").await;
    gw.chat("t", "/task clu big job").await;
    model.wait_requests(1).await;
    gw.stop("KILL").await;
    gw.restart().await;
    let msgs = gw
        .wait_messages("t", |m| count(m, "interrupted by a gateway restart") == 1)
        .await;
    assert!(
        msgs[0].starts_with("⚠️ Task #1 (clu) was interrupted"),
        "{msgs:?}"
    );
    let out = gw.cli(&["tasks", "list", "--json"]).await;
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tasks[0]["status"], "interrupted");
}
