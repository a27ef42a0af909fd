//! Cron through the real gateway and CLI, with the test clock (`SWITCHBOARD_TEST_CLOCK`) so no
//! test waits for real minutes.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

fn jobs(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("json: {}", stdout(out)))
}

/// Waits (bounded) until `cron list --json` satisfies `pred`.
async fn wait_jobs(gw: &TestGateway, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let v = jobs(&gw.cli(&["cron", "list", "--json"]).await);
        if pred(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "cron jobs never matched: {}\n{}",
        stdout(&gw.cli(&["cron", "list"]).await),
        gw.log()
    );
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_list_rm_work_with_the_gateway_down_and_bad_input_is_named() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    gw.stop("TERM").await;
    gw.set_clock("2026-03-28T10:00:00Z");
    let out = gw
        .cli(&[
            "cron",
            "add",
            "0 9 * * *",
            "Good morning check-in",
            "--to",
            "local:me",
            "--tz",
            "Europe/London",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("added #1 Good morning check-in"),
        "{}",
        stdout(&out)
    );
    let v = jobs(&gw.cli(&["cron", "list", "--json"]).await);
    // Spring forward is on 29 March: 09:00 BST is 08:00 UTC.
    assert_eq!(v[0]["next_run"], ms("2026-03-29T08:00:00Z"));
    assert_eq!(v[0]["target"], "local:me");
    assert_eq!(v[0]["agent"], "jarvis");

    for (args, why) in [
        (vec!["0 9 * *", "x"], "4 fields"),
        (
            vec!["0 9 * * *", "x", "--tz", "Mars/Base"],
            "IANA time zone",
        ),
        (
            vec!["0 9 * * *", "x", "--agent", "ghost"],
            "no agent named `ghost`",
        ),
        (
            vec!["0 9 * * *", "x", "--to", "telegram:42"],
            "telegram channel is not enabled",
        ),
        (vec!["0 9 * * *", "x", "--to", "fax:1"], "invalid target"),
    ] {
        let mut full = vec!["cron", "add"];
        full.extend(args);
        let out = gw.cli(&full).await;
        assert_eq!(out.status.code(), Some(2), "{full:?}");
        assert!(stderr(&out).contains(why), "{full:?}: {}", stderr(&out));
    }
    let out = gw.cli(&["cron", "disable", "1"]).await;
    assert!(out.status.success());
    assert!(stdout(&gw.cli(&["cron", "list"]).await).contains("disabled"));
    let out = gw.cli(&["cron", "rm", "1"]).await;
    assert!(out.status.success());
    assert_eq!(
        stdout(&gw.cli(&["cron", "list"]).await).trim(),
        "No cron jobs."
    );
    let out = gw.cli(&["cron", "rm", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_due_job_runs_in_an_isolated_session_and_posts_to_telegram() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SECRET", apiUrl: "{}", dmPolicy: "open" }} }},"#,
        tg.url
    );
    let gw = TestGateway::start(&model, &extra).await;
    gw.set_clock("2026-06-01T07:59:30Z"); // 08:59:30 in London (BST)
    gw.chat("me", "my locker code is 4711").await;
    let out = gw
        .cli(&[
            "cron",
            "add",
            "0 9 * * *",
            "Good morning check-in",
            "--to",
            "telegram:111",
            "--tz",
            "Europe/London",
            "--name",
            "morning",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // Picked up by the running gateway without a restart, and fired when the clock reaches 09:00.
    gw.set_clock("2026-06-01T08:00:05Z");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].chat_id, 111);
    assert_eq!(sent[0].text, "echo: Good morning check-in");
    let req = model
        .requests()
        .into_iter()
        .find(|r| r.last_user_text() == "Good morning check-in")
        .unwrap();
    assert_eq!(
        req.transcript(),
        vec!["Good morning check-in"],
        "no chat history"
    );
    assert!(!req.system().contains("4711"));
    let v = wait_jobs(&gw, |v| v[0]["last_status"] == "ok").await;
    assert_eq!(v[0]["last_slot"], ms("2026-06-01T08:00:00Z"));
    assert_eq!(v[0]["next_run"], ms("2026-06-02T08:00:00Z"));
    let note = std::fs::read_to_string(gw.workspace("jarvis").join("memory/2026-06-01.md"))
        .or_else(|_| {
            // The note is dated by the real clock; find today's.
            let dir = gw.workspace("jarvis").join("memory");
            let f = std::fs::read_dir(dir)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            std::fs::read_to_string(f)
        })
        .unwrap();
    assert!(
        note.contains("Cron job \"morning\" ran: echo: Good morning check-in"),
        "{note}"
    );
    let status = stdout(&gw.cli(&["gateway", "status"]).await);
    assert!(status.contains("cron: 1 jobs"), "{status}");
    // Still exactly one post for that slot.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tg.sent().len(), 1);
    // `/cron` in that chat lists it; `cron run` fires it now.
    let out = gw.cli(&["cron", "run", "1"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    tg.wait_sent(|s| s.len() == 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_reply_posts_nothing_and_a_failing_job_is_retried_reported_and_isolated() {
    let model = FakeModel::start().await;
    model.on(Some("quiet check"), Reply::Text("NO_REPLY".into()));
    for _ in 0..3 {
        model.on(
            Some("doomed job"),
            Reply::Status {
                code: 401,
                retry_after: None,
                body: "{}".into(),
            },
        );
    }
    let gw = TestGateway::start(&model, "").await;
    gw.set_clock("2026-01-05T08:59:00Z");
    for (msg, chat) in [
        ("quiet check", "local:quiet"),
        ("doomed job", "local:doom"),
        ("healthy job", "local:ok"),
    ] {
        let out = gw
            .cli(&["cron", "add", "0 9 * * *", msg, "--to", chat, "--tz", "UTC"])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    gw.set_clock("2026-01-05T09:00:01Z");
    // The healthy job is not held up by the failing one.
    let ok = gw.wait_messages("ok", |m| !m.is_empty()).await;
    assert_eq!(ok, vec!["echo: healthy job"]);
    wait_jobs(&gw, |v| {
        v[0]["last_status"] == "no_reply" && v[1]["last_status"] == "error"
    })
    .await;
    assert!(gw.messages("quiet", 0).await.is_empty());
    // Retries with backoff: 30 s, then 2 min; the third failure is reported in the chat.
    gw.set_clock("2026-01-05T09:00:40Z");
    // Wait until the second failure and its retry time are stored: moving the clock on as soon as
    // the model saw the second request raced the scheduler, which then dated the retry from 09:03.
    for _ in 0..200 {
        let second_failure_stored = gw
            .try_count(
                "SELECT count(*) FROM cron_runs WHERE job_id = 2 AND attempts >= 2
                 AND status = 'error' AND next_retry IS NOT NULL",
            )
            .is_some_and(|n| n > 0);
        if second_failure_stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        model
            .requests()
            .iter()
            .filter(|r| r.last_user_text() == "doomed job")
            .count(),
        2
    );
    gw.set_clock("2026-01-05T09:03:00Z");
    let doom = gw.wait_messages("doom", |m| !m.is_empty()).await;
    assert_eq!(doom.len(), 1);
    assert!(doom[0].starts_with("⚠️ Cron job #2"), "{doom:?}");
    assert!(doom[0].contains("failed 3 times"), "{doom:?}");
    assert!(doom[0].contains("authentication failed (401)"), "{doom:?}");
    wait_jobs(&gw, |v| v[1]["last_status"] == "failed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_slots_fire_once_if_recent_and_are_skipped_if_too_late() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    gw.stop("TERM").await;
    gw.set_clock("2026-02-02T07:30:00Z");
    let add = |s: &'static str, m: &'static str, to: &'static str| {
        let gw = &gw;
        async move {
            let out = gw
                .cli(&["cron", "add", s, m, "--to", to, "--tz", "UTC"])
                .await;
            assert!(out.status.success(), "{}", stderr(&out));
        }
    };
    add("0 * * * *", "hourly report", "local:hourly").await;
    add("0 1 * * *", "night digest", "local:night").await;
    // Down until 11:20: the hourly job missed 08:00–11:00 (fires once, for 11:00); the 01:00 job's
    // next slot is tomorrow, so nothing for it.
    gw.set_clock("2026-02-02T11:20:00Z");
    gw.restart().await;
    let hourly = gw.wait_messages("hourly", |m| !m.is_empty()).await;
    assert_eq!(hourly, vec!["echo: hourly report"]);
    let v = wait_jobs(&gw, |v| v[0]["last_status"] == "ok").await;
    assert_eq!(v[0]["last_slot"], ms("2026-02-02T11:00:00Z"));
    assert_eq!(v[0]["next_run"], ms("2026-02-02T12:00:00Z"));
    // Now down past 01:00 tomorrow by more than 6 hours: that slot is skipped, not fired.
    gw.stop("TERM").await;
    gw.set_clock("2026-02-03T07:30:00Z");
    gw.restart().await;
    let v = wait_jobs(&gw, |v| v[1]["last_status"] == "skipped").await;
    assert_eq!(v[1]["last_slot"], ms("2026-02-03T01:00:00Z"));
    assert_eq!(v[1]["next_run"], ms("2026-02-04T01:00:00Z"));
    // The hourly job (07:00 is 30 min late) fires once for 07:00.
    let v = wait_jobs(&gw, |v| {
        v[0]["last_slot"] == ms("2026-02-03T07:00:00Z") && v[0]["last_status"] == "ok"
    })
    .await;
    assert_eq!(v[0]["next_run"], ms("2026-02-03T08:00:00Z"));
    assert!(gw.messages("night", 0).await.is_empty());
    let requests = model.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.last_user_text() == "night digest")
            .count(),
        0
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.last_user_text() == "hourly report")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_during_a_run_does_not_post_the_slot_twice() {
    let model = FakeModel::start().await;
    model.on(
        Some("slow digest"),
        Reply::Hold(Gate::default(), Box::new(Reply::Text("never".into()))),
    );
    let mut gw = TestGateway::start(&model, "").await;
    gw.set_clock("2026-04-01T05:59:50Z");
    let out = gw
        .cli(&[
            "cron",
            "add",
            "0 6 * * *",
            "slow digest",
            "--to",
            "local:d",
            "--tz",
            "UTC",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    gw.set_clock("2026-04-01T06:00:01Z");
    model.wait_requests(1).await;
    gw.stop("KILL").await;
    gw.restart().await;
    let msgs = gw.wait_messages("d", |m| !m.is_empty()).await;
    assert_eq!(msgs, vec!["echo: slow digest"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = gw.count("SELECT count(*) FROM outbox WHERE dedupe_key LIKE 'cron:%'");
    assert_eq!(n, 1);
    let runs = gw.count("SELECT count(*) FROM cron_runs");
    assert_eq!(runs, 1, "one slot, one run");
    assert_eq!(gw.messages("d", 0).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_schedules_jobs_with_its_tool_and_cron_lists_them_in_chat() {
    let model = FakeModel::start().await;
    model.on(
        Some("remind me every weekday at 8"),
        Reply::Tool {
            name: "cron_add".into(),
            input: serde_json::json!({ "schedule": "0 8 * * 1-5", "message": "Remind the user to stretch", "name": "stretch" }),
        },
    );
    model.on(
        Some("remind me every weekday at 8"),
        Reply::Text("Done — weekdays at 8.".into()),
    );
    let gw = TestGateway::start(&model, "").await;
    assert_eq!(
        gw.chat("me", "remind me every weekday at 8 to stretch")
            .await,
        "Done — weekdays at 8."
    );
    let listed = gw.chat("me", "/cron").await;
    assert!(listed.starts_with("#1 stretch [0 8 * * 1-5"), "{listed}");
    assert!(listed.contains("→ local:me"), "{listed}");
    assert_eq!(gw.chat("elsewhere", "/cron").await, "No cron jobs.");
}
