//! Memory that lasts: full-text search over memory files and past conversations.

use crate::support::*;
use serde_json::json;

fn search(model: &FakeModel, when: &str, query: &str) {
    model.on(
        Some(when),
        Reply::Tool {
            name: "search_memory".into(),
            input: json!({ "query": query }),
        },
    );
    model.on(Some(when), Reply::Text("ok".into()));
}

/// The tool result the model got back in the latest request.
fn last_tool_result(model: &FakeModel) -> String {
    let req = model.requests().pop().unwrap();
    req.tool_results().pop().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_and_conversations_are_found_by_search_after_a_restart() {
    let model = FakeModel::start().await;
    model.on(
        Some("passport"),
        Reply::Tool {
            name: "remember".into(),
            input: json!({ "text": "Passport number is X1234567" }),
        },
    );
    model.on(Some("passport"), Reply::Text("Saved.".into()));
    let mut gw = TestGateway::start(&model, "").await;
    gw.chat("a", "remember my passport number X1234567").await;
    gw.chat("a", "by the way the wifi password is hunter-two")
        .await;
    gw.stop("TERM").await;
    gw.restart().await;

    search(&model, "wifi", "wifi password");
    gw.chat("b", "what was the wifi?").await;
    let result = last_tool_result(&model);
    assert!(result.contains("hunter-two"), "{result}");
    assert!(result.starts_with("conversation "), "{result}");

    search(&model, "travel", "passport");
    gw.chat("b", "travel documents?").await;
    let result = last_tool_result(&model);
    assert!(
        result.contains("MEMORY.md: Passport number is X1234567"),
        "{result}"
    );

    // A hand edit is picked up on the next search.
    let path = gw.workspace("jarvis").join("MEMORY.md");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("- The boat is called Nautilus\n");
    std::fs::write(&path, text).unwrap();
    search(&model, "sailing", "boat name");
    gw.chat("b", "sailing plans?").await;
    let result = last_tool_result(&model);
    assert!(result.contains("The boat is called Nautilus"), "{result}");

    search(&model, "nothing", "zebra");
    gw.chat("b", "nothing to find").await;
    assert_eq!(last_tool_result(&model), "no matches");
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_flushes_memory_summarizes_and_keeps_recent_turns() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "compaction: { enabled: true, threshold: 2000 },").await;
    for i in 0..6 {
        gw.chat("c", &format!("note {i}: order #4{i} for Bob"))
            .await;
    }
    // The flush turn saves a fact; the summary request gets the older turns.
    model.on(
        Some("about to be compacted"),
        Reply::Tool {
            name: "remember".into(),
            input: json!({ "text": "Bob's orders are #40-#45" }),
        },
    );
    model.on(Some("about to be compacted"), Reply::Text("DONE".into()));
    model.on(
        Some("Summarize this conversation"),
        Reply::Text("SUMMARY: Bob placed orders #40 to #45.".into()),
    );
    model.set_input_tokens(2500);
    let reply = gw.chat("c", "note 6: that's all").await;
    assert_eq!(reply, "echo: note 6: that's all");
    let msgs = gw
        .wait_messages("c", |m| m.iter().any(|t| t.starts_with("🧹")))
        .await;
    assert!(
        msgs.iter()
            .any(|t| t.contains("summarized the older messages"))
    );
    model.set_input_tokens(100);
    let memory = std::fs::read_to_string(gw.workspace("jarvis").join("MEMORY.md")).unwrap();
    assert!(memory.contains("Bob's orders are #40-#45"), "{memory}");
    let summary_req = model
        .requests()
        .into_iter()
        .find(|r| {
            r.last_user_text()
                .starts_with("Summarize this conversation")
        })
        .unwrap();
    assert!(summary_req.last_user_text().contains("order #40 for Bob"));
    // The session keeps working: the summary is in the prompt, older turns are not, recent ones are.
    gw.chat("c", "what next?").await;
    let last = model.requests().pop().unwrap();
    assert!(
        last.system()
            .contains("SUMMARY: Bob placed orders #40 to #45."),
        "{}",
        last.system()
    );
    let t = last.transcript();
    assert!(!t.iter().any(|x| x.contains("note 0")), "{t:?}");
    assert!(t.iter().any(|x| x.contains("note 6")), "{t:?}");
    // Nothing deleted: compacted turns are kept, marked.
    let (all, compacted): (i64, i64) = (
        gw.count("SELECT count(*) FROM turns"),
        gw.count("SELECT count(*) FROM turns WHERE compacted = 1"),
    );
    assert!(
        compacted > 0 && all > compacted,
        "{all} turns, {compacted} compacted"
    );
    let notes = std::fs::read_dir(gw.workspace("jarvis").join("memory")).unwrap();
    let text: String = notes
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(text.contains("Compaction summary"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn context_too_long_compacts_and_retries_once() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    for i in 0..8 {
        gw.chat("c", &format!("message {i}")).await;
    }
    model.on(
        Some("big question"),
        Reply::Status {
            code: 400,
            retry_after: None,
            body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: context length exceeded"}}"#.into(),
        },
    );
    model.on(
        Some("Summarize this conversation"),
        Reply::Text("SUMMARY: eight messages".into()),
    );
    assert_eq!(gw.chat("c", "big question").await, "echo: big question");
    let last = model.requests().pop().unwrap();
    assert!(last.system().contains("SUMMARY: eight messages"));
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_memory_stays_within_budget_and_says_what_it_left_out() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "memory: { promptChars: 1500 },").await;
    let path = gw.workspace("jarvis").join("MEMORY.md");
    let mut text = String::from("# Memory\n\n");
    for i in 0..100 {
        text.push_str(&format!("- fact number {i:03} about the household\n"));
    }
    std::fs::write(&path, text).unwrap();
    gw.chat("c", "hi").await;
    let system = model.requests().pop().unwrap().system();
    assert!(system.contains("fact number 000"), "{system}");
    assert!(!system.contains("fact number 099"), "{system}");
    assert!(
        system.contains("characters of MEMORY.md. Use search_memory to find them.)"),
        "{system}"
    );
    assert!(
        system.chars().count() < 2500,
        "{} chars",
        system.chars().count()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn task_results_are_noted_in_the_daily_note() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    gw.chat("t", "/task clu tidy the repo").await;
    gw.wait_messages("t", |m| m.iter().any(|x| x.starts_with("✅ Task #1")))
        .await;
    let dir = gw.workspace("clu").join("memory");
    let notes: String = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        notes.contains("[Task #1 (clu) done: echo: tidy the repo]"),
        "{notes}"
    );
}
