//! Model roles and failover: retries, fallbacks, cooldowns, `/model`.

use crate::support::fake_model::Format;
use crate::support::gateway::{config_text, free_port};
use crate::support::*;
use std::time::Duration;

async fn with_fallback(model: &FakeModel) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&model.url, port, &dir.path().join("state"), "").replace(
        r#"coding: "openai/gpt-test" }"#,
        r#"coding: "openai/gpt-test", fast: "openai/gpt-fast", fallbacks: ["openai/gpt-fallback"] }"#,
    );
    TestGateway::start_in(dir, port, &text).await
}

#[tokio::test(flavor = "multi_thread")]
async fn overloaded_provider_falls_back_and_then_cools_down() {
    let model = FakeModel::start().await;
    for _ in 0..3 {
        model.on(
            Some("hello"),
            Reply::Status {
                code: 529,
                retry_after: None,
                body: "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}".into(),
            },
        );
    }
    let gw = with_fallback(&model).await;
    assert_eq!(gw.chat("c", "hello").await, "echo: hello");
    let reqs = model.requests();
    assert_eq!(
        reqs.len(),
        4,
        "three tries on the primary, then the fallback"
    );
    assert!(matches!(reqs[3].format, Format::OpenAi));
    assert_eq!(reqs[3].body["model"], "gpt-fallback");
    // The overloaded provider is left alone for a while: the next message goes to the fallback.
    assert_eq!(gw.chat("c", "again").await, "echo: again");
    let reqs = model.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!(reqs[4].body["model"], "gpt-fallback");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_model_failing_gives_the_specific_reasons() {
    let model = FakeModel::start().await;
    for _ in 0..2 {
        model.on(
            None,
            Reply::Status {
                code: 401,
                retry_after: None,
                body: "{}".into(),
            },
        );
        model.on(
            None,
            Reply::Status {
                code: 429,
                retry_after: Some(60),
                body: "{}".into(),
            },
        );
    }
    let gw = with_fallback(&model).await;
    for _ in 0..2 {
        let r = gw.chat("c", "anyone?").await;
        assert_eq!(
            r,
            "⚠️ I couldn't get an answer. anthropic: authentication failed (401); openai: rate limited"
        );
    }
    // The owner hears once per cause, not once per message, and `gateway status` lists them.
    let log = gw.log();
    assert_eq!(log.matches("provider failing").count(), 2, "{log}");
    assert!(
        log.contains("provider=\"anthropic\" cause=\"auth\"")
            || log.contains("provider=anthropic cause=auth"),
        "{log}"
    );
    let out = gw.cli(&["gateway", "status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = v["model_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v}");
    assert_eq!(problems[0]["provider"], "anthropic");
    assert_eq!(problems[0]["cause"], "auth");
    assert_eq!(problems[0]["failures"], 2);
    assert_eq!(problems[1]["cause"], "rate_limited");
    let text = stdout(&gw.cli(&["gateway", "status"]).await);
    assert!(
        text.contains("model problem: anthropic: authentication failed (401) (2 failures since"),
        "{text}"
    );
    // A provider that answers again is off the list (openai, not tried since, stays on it).
    assert_eq!(gw.chat("c", "now?").await, "echo: now?");
    let text = stdout(&gw.cli(&["gateway", "status"]).await);
    assert!(!text.contains("model problem: anthropic"), "{text}");
    assert!(
        text.contains("model problem: openai: rate limited"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_switches_this_chats_model() {
    let model = FakeModel::start().await;
    let gw = with_fallback(&model).await;
    assert_eq!(
        gw.chat("c", "/model fast").await,
        "This chat now uses fast (openai/gpt-fast)."
    );
    gw.chat("c", "quick one").await;
    assert_eq!(model.requests().pop().unwrap().body["model"], "gpt-fast");
    assert!(
        gw.chat("c", "/status")
            .await
            .contains("Model: openai/gpt-fast")
    );
    // Other chats are unaffected.
    gw.chat("d", "normal").await;
    assert_eq!(model.requests().pop().unwrap().body["model"], "claude-test");
    assert!(
        gw.chat("c", "/model nonsense")
            .await
            .starts_with("No model `nonsense`")
    );
    gw.chat("c", "/model reset").await;
    gw.chat("c", "back").await;
    assert_eq!(model.requests().pop().unwrap().body["model"], "claude-test");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_does_not_answer_in_time_falls_back_with_the_reason() {
    let model = FakeModel::start().await;
    // Both calls to the primary (a first try and one retry) hang past its 1-second timeout.
    for _ in 0..3 {
        model.on(
            Some("slow"),
            Reply::Delay(
                Duration::from_secs(30),
                Box::new(Reply::Text("late".into())),
            ),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&model.url, port, &dir.path().join("state"), "")
        .replace(
            r#"apiKey: "sk-ant-test-SECRET", "#,
            r#"apiKey: "sk-ant-test-SECRET", timeoutSeconds: 1, "#,
        )
        .replace(
            r#"coding: "openai/gpt-test" }"#,
            r#"coding: "openai/gpt-test", fallbacks: ["openai/gpt-fallback"] }"#,
        );
    let gw = TestGateway::start_in(dir, port, &text).await;
    assert_eq!(gw.chat("c", "slow").await, "echo: slow");
    let reqs = model.requests();
    assert_eq!(reqs.last().unwrap().body["model"], "gpt-fallback");
    assert!(gw.log().contains("timed out"), "{}", gw.log());
}
