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
    req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["content"].as_str().unwrap_or_default().to_string())
        .next_back()
        .unwrap_or_default()
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
