use crate::support::fake_model::Format;
use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn terminal_chat_gets_the_models_reply() {
    let model = FakeModel::start().await;
    model.on(
        Some("hello there"),
        Reply::Text("Hello! How can I help?".into()),
    );
    let gw = TestGateway::start(&model, "").await;
    let out = gw.cli_stdin(&["chat"], "hello there\nsecond line\n").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, vec!["Hello! How can I help?", "echo: second line"]);
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    assert!(matches!(reqs[0].format, Format::Anthropic));
    assert_eq!(reqs[0].body["model"], "claude-test");
    // The prompt is built from the agent's workspace, created with starter content.
    assert!(
        reqs[0].system().contains("You are Jarvis"),
        "{}",
        reqs[0].system()
    );
    assert!(gw.workspace("jarvis").join("MEMORY.md").exists());
    // The second turn carries the first one as history.
    assert_eq!(
        reqs[1].transcript(),
        vec!["hello there", "Hello! How can I help?", "second line"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_format_agent_answers_after_agent_switch() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    assert_eq!(
        gw.chat("c", "/agent clu").await,
        "This chat now talks to clu."
    );
    assert_eq!(gw.chat("c", "build it").await, "echo: build it");
    let reqs = model.requests();
    assert!(matches!(reqs[0].format, Format::OpenAi));
    assert_eq!(reqs[0].body["model"], "gpt-test");
    assert!(reqs[0].system().contains("You are Clu"));
    let status = gw.chat("c", "/status").await;
    assert!(status.contains("Agent: clu"), "{status}");
    assert!(status.contains("Model: openai/gpt-test"), "{status}");
    let unknown = gw.chat("c", "/agent nobody").await;
    assert!(unknown.starts_with("No agent named `nobody`"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn remember_tool_writes_memory_and_the_next_prompt_has_it() {
    let model = FakeModel::start().await;
    model.on(
        Some("remember that"),
        Reply::Tool {
            name: "remember".into(),
            input: json!({ "text": "Alice's birthday is 3 March" }),
        },
    );
    model.on(Some("remember that"), Reply::Text("Noted.".into()));
    let gw = TestGateway::start(&model, "").await;
    assert_eq!(
        gw.chat("me", "remember that Alice's birthday is 3 March")
            .await,
        "Noted."
    );
    let memory = std::fs::read_to_string(gw.workspace("jarvis").join("MEMORY.md")).unwrap();
    assert!(memory.contains("- Alice's birthday is 3 March"), "{memory}");
    // The tool result went back to the model in the same turn.
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].transcript().contains(&"saved".to_string()));
    // A later message, even in another chat, sees the memory in its prompt.
    gw.chat("other", "when is Alice's birthday?").await;
    let last = model.requests().pop().unwrap();
    assert!(last.system().contains("Alice's birthday is 3 March"));
}

#[tokio::test(flavor = "multi_thread")]
async fn new_starts_a_fresh_session() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    gw.chat("c", "my name is Bob").await;
    gw.chat("c", "what is my name?").await;
    assert!(
        model.requests()[1]
            .transcript()
            .contains(&"my name is Bob".to_string())
    );
    let r = gw.chat("c", "/new").await;
    assert_eq!(r, "Started a fresh conversation with jarvis.");
    gw.chat("c", "who am I?").await;
    let t = model.requests().pop().unwrap().transcript();
    assert_eq!(t, vec!["who am I?"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn chats_run_in_parallel_while_one_chat_stays_in_order() {
    let model = FakeModel::start().await;
    let gate = Gate::default();
    model.on(
        Some("A1"),
        Reply::Hold(gate.clone(), Box::new(Reply::Text("reply A1".into()))),
    );
    let gw = std::sync::Arc::new(TestGateway::start(&model, "").await);
    let g = gw.clone();
    let a1 = tokio::spawn(async move { g.chat("a", "A1").await });
    model.wait_requests(1).await;
    let g = gw.clone();
    let a2 = tokio::spawn(async move { g.chat("a", "A2").await });
    // Wait until A2 is stored: it is queued behind A1.
    for _ in 0..200 {
        let n = gw.count("SELECT count(*) FROM inbox");
        if n == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Chat B is answered while chat A's first message is still with the model.
    assert_eq!(gw.chat("b", "B1").await, "echo: B1");
    let texts: Vec<String> = model
        .requests()
        .iter()
        .map(|r| r.last_user_text())
        .collect();
    assert_eq!(texts, vec!["A1", "B1"], "A2 must wait for A1");
    gate.open();
    assert_eq!(a1.await.unwrap(), "reply A1");
    assert_eq!(a2.await.unwrap(), "echo: A2");
    let a2_req = model
        .requests()
        .into_iter()
        .find(|r| r.last_user_text() == "A2")
        .unwrap();
    assert_eq!(a2_req.transcript(), vec!["A1", "reply A1", "A2"]);
}
