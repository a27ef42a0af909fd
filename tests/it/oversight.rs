//! Proactive and accountable: heartbeats, usage, budgets and notices to the owner, through the
//! real gateway and CLI with the test clock and the fake model.

use crate::support::fake_telegram::{FakeTelegram, Fault};
use crate::support::gateway::{config_text, free_port};
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("json: {}\n{}", stdout(out), stderr(out)))
}

/// Waits (bounded) until `switchboard <args> --json` satisfies `pred`.
async fn wait_json(gw: &TestGateway, args: &[&str], pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = json(&gw.cli(args).await);
        if pred(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{args:?} never matched: {last:#}\n{}", gw.log());
}

/// Messages ever queued for `target` (delivered or not): what the owner was told, counted where
/// it is stored, so a second notice still in flight counts too.
fn queued_for(gw: &TestGateway, target: &str) -> i64 {
    gw.db()
        .query_row(
            "SELECT count(*) FROM outbox WHERE target = ?1",
            [target],
            |r| r.get(0),
        )
        .unwrap()
}

fn slots(v: &Value) -> Vec<i64> {
    let mut s: Vec<i64> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slot"].as_i64().unwrap())
        .collect();
    s.sort();
    s
}

async fn next_heartbeat(gw: &TestGateway, at: &str) {
    wait_json(gw, &["gateway", "status", "--json"], |v| {
        v["heartbeat"]["next_ms"] == ms(at)
    })
    .await;
}

fn heartbeat_requests(model: &FakeModel) -> Vec<crate::support::fake_model::Recorded> {
    model
        .requests()
        .into_iter()
        .filter(|r| r.last_user_text().contains("HEARTBEAT.md"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_speaks_only_when_something_needs_a_person_and_only_in_active_hours() {
    let model = FakeModel::start().await;
    for _ in 0..2 {
        model.on(Some("HEARTBEAT.md"), Reply::Text("HEARTBEAT_OK".into()));
    }
    model.on(
        Some("HEARTBEAT.md"),
        Reply::Text("The nightly backup did not run.".into()),
    );
    model.on(Some("HEARTBEAT.md"), Reply::Text("HEARTBEAT_OK".into()));
    model.on(
        Some("HEARTBEAT.md"),
        Reply::Text("  HEARTBEAT_OK \n".into()),
    );
    let gw = TestGateway::start(
        &model,
        r#"heartbeat: { every: "30m", activeHours: "08:00-22:00", to: "local:ops" },"#,
    )
    .await;
    // A starter checklist is created with the workspace.
    let checklist = std::fs::read_to_string(gw.workspace("jarvis").join("HEARTBEAT.md")).unwrap();
    assert!(checklist.starts_with("# Heartbeat"), "{checklist}");

    // 09:10 in London (BST): the first start waits for the next slot, 09:30.
    gw.set_clock("2026-06-01T08:10:00Z");
    next_heartbeat(&gw, "2026-06-01T08:30:00Z").await;
    assert!(slots(&json(&gw.cli(&["heartbeat", "--json"]).await)).is_empty());

    for (i, at) in ["2026-06-01T08:30:05Z", "2026-06-01T09:00:05Z"]
        .iter()
        .enumerate()
    {
        gw.set_clock(at);
        let v = wait_json(&gw, &["heartbeat", "--json"], |v| {
            v["runs"].as_array().unwrap().len() == i + 1 && v["runs"][0]["status"] == "ok"
        })
        .await;
        assert_eq!(v["runs"][0]["reply"], "HEARTBEAT_OK");
    }
    assert!(
        gw.messages("ops", 0).await.is_empty(),
        "HEARTBEAT_OK posts nothing"
    );

    gw.set_clock("2026-06-01T09:30:05Z");
    let posted = gw.wait_messages("ops", |m| !m.is_empty()).await;
    assert_eq!(posted, vec!["The nightly backup did not run."]);
    let v = wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["status"] == "posted"
    })
    .await;
    assert_eq!(v["runs"][0]["slot"], ms("2026-06-01T09:30:00Z"));

    // Each run is an isolated session with HEARTBEAT.md in its prompt.
    let reqs = heartbeat_requests(&model);
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.transcript().len(), 1, "no history: {:?}", r.transcript());
        assert!(r.last_user_text().contains("# Heartbeat"));
        assert!(r.last_user_text().contains("HEARTBEAT_OK"));
    }

    // 21:30 runs; 22:00 is outside the active hours, so the next run is 08:00 tomorrow.
    gw.set_clock("2026-06-01T20:30:05Z");
    wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["slot"] == ms("2026-06-01T20:30:00Z") && v["runs"][0]["status"] == "ok"
    })
    .await;
    next_heartbeat(&gw, "2026-06-02T07:00:00Z").await;
    gw.set_clock("2026-06-01T21:00:05Z");
    gw.set_clock("2026-06-02T07:00:05Z");
    let v = wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["slot"] == ms("2026-06-02T07:00:00Z") && v["runs"][0]["status"] == "ok"
    })
    .await;
    assert_eq!(
        slots(&v),
        [
            "2026-06-01T08:30:00Z",
            "2026-06-01T09:00:00Z",
            "2026-06-01T09:30:00Z",
            "2026-06-01T20:30:00Z",
            "2026-06-02T07:00:00Z"
        ]
        .map(ms),
        "no run outside the active hours, none queued for later"
    );
    assert_eq!(gw.messages("ops", 0).await.len(), 1);
    // The heartbeat shows in `gateway status`.
    let status = stdout(&gw.cli(&["gateway", "status"]).await);
    assert!(
        status.contains("heartbeat: every 30m (08:00-22:00)"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_three_hours_of_downtime_the_heartbeat_runs_once_not_six_times() {
    let model = FakeModel::start().await;
    let mut gw =
        TestGateway::start(&model, r#"heartbeat: { every: "30m", to: "local:ops" },"#).await;
    gw.set_clock("2026-06-01T10:00:00Z");
    next_heartbeat(&gw, "2026-06-01T10:30:00Z").await;
    model.on(Some("HEARTBEAT.md"), Reply::Text("HEARTBEAT_OK".into()));
    gw.set_clock("2026-06-01T10:30:05Z");
    wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["status"] == "ok"
    })
    .await;
    gw.stop("TERM").await;

    // Down for three hours: slots 11:00 … 13:30 are missed.
    gw.set_clock("2026-06-01T13:40:00Z");
    for _ in 0..6 {
        model.on(Some("HEARTBEAT.md"), Reply::Text("HEARTBEAT_OK".into()));
    }
    gw.restart().await;
    let v = wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["slot"] == ms("2026-06-01T13:30:00Z") && v["runs"][0]["status"] == "ok"
    })
    .await;
    next_heartbeat(&gw, "2026-06-01T14:00:00Z").await;
    assert_eq!(
        slots(&v),
        [ms("2026-06-01T10:30:00Z"), ms("2026-06-01T13:30:00Z")]
    );
    assert_eq!(heartbeat_requests(&model).len(), 2);
    // The schedule goes on from there.
    gw.set_clock("2026-06-01T14:00:05Z");
    wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["slot"] == ms("2026-06-01T14:00:00Z")
    })
    .await;
}

/// The standard test config with prices for the fake's models (a server on loopback is free
/// unless priced), and `extra`.
async fn priced_gateway(model: &FakeModel, extra: &str) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&model.url, port, &dir.path().join("state"), extra)
        .replace(
            r#"apiKey: "sk-ant-test-SECRET", "#,
            r#"apiKey: "sk-ant-test-SECRET", prices: { "claude-test": { input: 10, output: 20, cacheRead: 1, cacheWrite: 12.5 } }, "#,
        )
        .replace(
            r#"apiKey: "sk-oai-test-SECRET", "#,
            r#"apiKey: "sk-oai-test-SECRET", prices: { "gpt-test": { input: 2, output: 8 } }, "#,
        );
    TestGateway::start_in(dir, port, &text).await
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_matches_the_models_tokens_and_a_spent_budget_refuses_turns_until_tomorrow() {
    let model = FakeModel::start().await;
    let gw = priced_gateway(
        &model,
        r#"owner: "local:owner", budgets: { dailyUsd: 0.05 },"#,
    )
    .await;
    gw.set_clock("2026-06-01T10:00:00Z");
    // 1000 × $10/M + 200 × $20/M + 3000 × $1/M + 400 × $12.5/M = $0.022 a turn.
    model.set_usage(1000, 200, 3000, 400);
    assert_eq!(gw.chat("me", "first").await, "echo: first");

    let v = json(&gw.cli(&["usage", "--json"]).await);
    let line = &v["lines"][0];
    assert_eq!(v["lines"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(line["key"], "anthropic/claude-test");
    assert_eq!(
        [
            &line["calls"],
            &line["input"],
            &line["output"],
            &line["cache_read"],
            &line["cache_write"],
            &line["cost_micros"],
            &line["unpriced"]
        ],
        [1, 1000, 200, 3000, 400, 22_000, 0]
            .map(Value::from)
            .each_ref()
    );
    let by_chat = json(&gw.cli(&["usage", "--json", "--by", "chat"]).await);
    assert_eq!(by_chat["lines"][0]["key"], "local:me");
    let text = stdout(&gw.cli(&["usage", "--by", "agent"]).await);
    assert!(text.contains("jarvis") && text.contains("$0.02"), "{text}");
    let bad = gw.cli(&["usage", "--since", "last week"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("YYYY-MM-DD"), "{}", stderr(&bad));

    // OpenAI's cached prompt tokens are split out of its prompt tokens (clu is on openai).
    assert!(gw.chat("other", "/agent clu").await.contains("clu"));
    assert_eq!(gw.chat("other", "second").await, "echo: second");
    let v = json(&gw.cli(&["usage", "--json", "--by", "model"]).await);
    let gpt = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "openai/gpt-test")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        (&gpt["input"], &gpt["cache_read"]),
        (&Value::from(1000), &Value::from(3000))
    );
    // 1000 × $2/M + 200 × $8/M + 3000 cached at the input price.
    assert_eq!(gpt["cost_micros"], 2000 + 1600 + 6000);

    // `/usage` is this chat's: one call today.
    let u = gw.chat("me", "/usage").await;
    assert!(u.contains("Today: 1 call, 1000 in / 200 out"), "{u}");
    assert!(u.contains("daily budget"), "{u}");

    // $0.022 + $0.0096 + $0.022 = $0.0536 after the next turn, which starts below the limit.
    assert_eq!(gw.chat("me", "third").await, "echo: third");
    let calls_before = model.requests().len();
    let refused = gw.chat("me", "fourth").await;
    assert!(refused.contains("daily budget is spent"), "{refused}");
    assert!(refused.contains("budgets.dailyUsd"), "{refused}");
    let again = gw.chat("other", "fifth").await;
    assert!(again.contains("budget is spent"), "{again}");
    assert_eq!(
        model.requests().len(),
        calls_before,
        "no model call past the budget"
    );
    let told = gw.wait_messages("owner", |m| !m.is_empty()).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("Budget reached"), "{told:?}");
    let owner_rows = queued_for(&gw, "local:owner");
    assert_eq!(owner_rows, 1, "the owner is told once");
    let status = json(&gw.cli(&["gateway", "status", "--json"]).await);
    assert_eq!(status["usage"]["today"]["calls"], 3);
    assert_eq!(status["usage"]["daily_usd"], 0.05);

    // A new day: turns resume.
    gw.set_clock("2026-06-02T10:00:00Z");
    assert_eq!(gw.chat("me", "new day").await, "echo: new day");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_skips_cron_runs_and_heartbeats_with_the_reason_recorded() {
    let model = FakeModel::start().await;
    let gw = priced_gateway(
        &model,
        r#"owner: "local:owner", budgets: { dailyUsd: 0.01 }, heartbeat: { every: "30m", to: "local:ops" },"#,
    )
    .await;
    gw.set_clock("2026-06-01T10:00:00Z");
    next_heartbeat(&gw, "2026-06-01T10:30:00Z").await;
    model.set_usage(1000, 200, 3000, 400);
    assert_eq!(gw.chat("me", "spend").await, "echo: spend");
    let out = gw
        .cli(&[
            "cron",
            "add",
            "15 11 * * *",
            "morning report",
            "--to",
            "local:ops",
            "--tz",
            "UTC",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    gw.set_clock("2026-06-01T10:30:05Z");
    let v = wait_json(&gw, &["heartbeat", "--json"], |v| {
        v["runs"][0]["status"] == "skipped"
    })
    .await;
    assert!(
        v["runs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("budget is spent"),
        "{v}"
    );
    gw.set_clock("2026-06-01T11:15:05Z");
    let jobs = wait_json(&gw, &["cron", "list", "--json"], |v| {
        v[0]["last_status"] == "skipped"
    })
    .await;
    assert!(jobs[0]["last_status"] == "skipped", "{jobs}");
    assert!(gw.messages("ops", 0).await.is_empty());
    assert!(heartbeat_requests(&model).is_empty());
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_rejecting_its_key_tells_the_owner_once_not_per_message() {
    let model = FakeModel::start().await;
    model.reject_auth("sk-ant-test-SECRET");
    let gw = TestGateway::start(&model, r#"owner: "local:owner","#).await;
    for i in 0..3 {
        let reply = gw.chat("me", &format!("hello {i}")).await;
        assert!(reply.contains("anthropic"), "{reply}");
    }
    let told = gw.wait_messages("owner", |m| !m.is_empty()).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("anthropic is failing"), "{told:?}");
    assert!(told[0].contains("providers.anthropic.apiKey"), "{told:?}");
    assert!(!told[0].contains("SECRET"), "{told:?}");
    let owner_rows = queued_for(&gw, "local:owner");
    assert_eq!(owner_rows, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_token_rejected_at_start_tells_the_owner() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    tg.fail(
        "getMe",
        Fault::Error {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
        },
    );
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"owner: "local:owner", channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}" }} }},"#,
            tg.url
        ),
    )
    .await;
    // The channels are looked at every few seconds: long-poll the owner's chat.
    let told = gw.messages("owner", 20).await;
    assert_eq!(told.len(), 1, "{told:?}\n{}", gw.log());
    assert!(
        told[0].contains("telegram channel cannot connect"),
        "{told:?}"
    );
    assert!(!told[0].contains("SECRET"), "{told:?}");
}
