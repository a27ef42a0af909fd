//! Streamed replies: the model's answer (Anthropic and OpenAI formats, as server-sent events) is
//! shown while it is written — a Telegram draft in private chats, else one message edited in
//! place (Telegram groups, Discord) — and ends as exactly the text an unstreamed reply would
//! be, delivered once through the outbox: long replies continue in the next message, rate
//! limits on edits are waited out, and a crash mid-stream leaves one complete message.

use crate::support::fake_model::Chunk;
use crate::support::fake_telegram::{FakeTelegram, Fault};
use crate::support::*;
use serde_json::json;
use std::time::Duration;
use switchboard_telegram::markdown_to_html;

const GROUP: i64 = -100_500;

/// Telegram with DMs open and one group served without mentions; `extra` top-level keys.
async fn telegram(extra: &str) -> (FakeModel, FakeTelegram, TestGateway) {
    telegram_with("", extra).await
}

async fn telegram_with(channel: &str, extra: &str) -> (FakeModel, FakeTelegram, TestGateway) {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open",
                 groups: {{ "{GROUP}": {{ requireMention: false }} }} {channel} }} }}, {extra}"#,
            tg.url
        ),
    )
    .await;
    (model, tg, gw)
}

/// Waits (bounded) until `pred` holds.
async fn until(what: &str, pred: impl Fn() -> bool) {
    for _ in 0..600 {
        if pred() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A reply of about `n` characters in paragraphs (so it splits on paragraph boundaries).
fn long_text(n: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.chars().count() < n {
        i += 1;
        s.push_str(&format!(
            "Paragraph {i}: the quick brown fox jumps over the lazy dog, again and again.\n\n"
        ));
    }
    s.trim_end().to_string()
}

const ANSWER: &str = "Here is **the plan**: first we check the logs, then we restart the service, and finally we tell the team.";

#[tokio::test(flavor = "multi_thread")]
async fn a_private_chat_sees_drafts_then_one_message_equal_to_the_unstreamed_reply() {
    let (model, tg, _gw) = telegram("").await;
    model.on(
        Some("plan"),
        Reply::paced(ANSWER, 5, Duration::from_millis(400)),
    );
    let asked = tg.dm(111, "what's the plan?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent.len(), 1, "one message: {sent:?}");
    assert_eq!(
        sent[0].text,
        markdown_to_html(ANSWER),
        "the unstreamed text"
    );
    assert_eq!(sent[0].reply_to, Some(asked));
    let drafts = tg.drafts();
    assert!(
        drafts.len() >= 2,
        "several drafts while written: {drafts:?}"
    );
    let ids: std::collections::HashSet<i64> = drafts.iter().map(|d| d.1).collect();
    assert_eq!(ids.len(), 1, "one draft, updated: {drafts:?}");
    assert!(drafts.iter().all(|d| d.0 == 111));
    assert!(
        drafts[0].2.len() < sent[0].text.len(),
        "the first draft shows the reply before it is done: {drafts:?}"
    );
    assert!(tg.edits().is_empty(), "drafts, not edits, in private chats");
    assert!(
        model.requests()[0].streamed,
        "the model was asked to stream"
    );
    // Once text showed, typing stopped: no "typing" after the first draft.
    tg.settle().await;
    assert_eq!(tg.sent().len(), 1, "nothing posted twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_sees_one_message_edited_in_place_and_a_long_reply_continues_in_the_next() {
    let (model, tg, _gw) = telegram("").await;
    let long = long_text(5200);
    model.on(
        Some("story"),
        Reply::paced(&long, 8, Duration::from_millis(300)),
    );
    tg.group(GROUP, 7, "tell me a story", None);
    let expected: Vec<String> = switchboard_channel::split_message(&long, 4096)
        .iter()
        .map(|p| markdown_to_html(p))
        .collect();
    assert_eq!(expected.len(), 2);
    until("the reply to be complete", || {
        let shown: Vec<String> = tg.sent_to(GROUP).iter().map(|m| m.text.clone()).collect();
        shown == expected
    })
    .await;
    tg.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown: Vec<String> = tg.sent_to(GROUP).iter().map(|m| m.text.clone()).collect();
    assert_eq!(shown, expected, "the final parts are the unstreamed ones");
    assert!(
        tg.edits().len() >= 2,
        "edited in place while written: {:?}",
        tg.edits().len()
    );
    assert!(tg.drafts().is_empty(), "no drafts in groups");
    assert!(tg.deleted().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_edit_is_waited_out_and_the_final_text_still_lands() {
    let (model, tg, _gw) = telegram("").await;
    model.on(
        Some("plan"),
        Reply::paced(ANSWER, 6, Duration::from_millis(300)),
    );
    let limited = Fault::Error {
        code: 429,
        description: "Too Many Requests: retry after 1".into(),
        retry_after: Some(1),
    };
    // Every edit is refused twice before one goes through: the preview backs off, and the
    // final reply (an edit too) is retried by the outbox until it lands.
    for _ in 0..3 {
        tg.fail("editMessageText", limited.clone());
    }
    tg.group(GROUP, 7, "the plan?", None);
    until("the final text", || {
        tg.sent_to(GROUP)
            .first()
            .is_some_and(|m| m.text == markdown_to_html(ANSWER))
    })
    .await;
    assert_eq!(tg.sent_to(GROUP).len(), 1);
    assert!(tg.calls_by_method()["editmessagetext"] >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_off_sends_one_message_as_before() {
    let (model, tg, _gw) = telegram_with(", streaming: false", "").await;
    for _ in 0..2 {
        model.on(
            Some("plan"),
            Reply::paced(ANSWER, 4, Duration::from_millis(200)),
        );
    }
    tg.dm(111, "the plan?");
    tg.group(GROUP, 7, "the plan?", None);
    until("both replies", || tg.sent().len() == 2).await;
    assert!(
        model.requests().iter().all(|r| !r.streamed),
        "whole answers were asked for"
    );
    assert!(tg.drafts().is_empty() && tg.edits().is_empty());
    assert_eq!(tg.sent_to(111)[0].text, markdown_to_html(ANSWER));
    assert_eq!(tg.sent_to(GROUP)[0].text, markdown_to_html(ANSWER));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_using_turn_streams_and_ends_with_the_last_step_text() {
    let (model, tg, _gw) = telegram("").await;
    model.on(
        Some("tasks"),
        Reply::Stream {
            chunks: vec![
                Chunk::Text("Let me look ".into()),
                Chunk::Pause(Duration::from_millis(400)),
                Chunk::Text("at your tasks.".into()),
            ],
            tool: Some(("list_tasks".into(), json!({}))),
        },
    );
    model.on(
        Some(""),
        Reply::paced("You have no tasks running.", 3, Duration::from_millis(300)),
    );
    tg.group(GROUP, 7, "any tasks?", None);
    until("the final text", || {
        tg.sent_to(GROUP)
            .first()
            .is_some_and(|m| m.text == "You have no tasks running.")
    })
    .await;
    let edits: Vec<String> = tg.edits().iter().map(|e| e.text.clone()).collect();
    assert!(
        tg.sent_to(GROUP).len() == 1,
        "one message for the whole turn: {:?}",
        tg.sent_to(GROUP)
    );
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].tool_results().len(),
        1,
        "the tool's result went back"
    );
    assert!(
        edits.iter().any(|e| e.contains("no tasks")),
        "the second step's text replaced the first's: {edits:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_cut_off_mid_stream_is_retried_and_only_the_retry_is_kept() {
    let (model, tg, _gw) = telegram("").await;
    model.on(
        Some("plan"),
        Reply::Stream {
            chunks: vec![
                Chunk::Text("A first attempt that ".into()),
                Chunk::Pause(Duration::from_millis(300)),
                Chunk::Cut,
            ],
            tool: None,
        },
    );
    model.on(
        Some("plan"),
        Reply::paced(ANSWER, 3, Duration::from_millis(200)),
    );
    tg.group(GROUP, 7, "the plan?", None);
    until("the final text", || {
        tg.sent_to(GROUP)
            .first()
            .is_some_and(|m| m.text == markdown_to_html(ANSWER))
    })
    .await;
    assert_eq!(model.requests().len(), 2, "retried once");
    assert_eq!(tg.sent_to(GROUP).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_format_streams_too() {
    let (model, tg, _gw) = telegram("").await;
    tg.group(GROUP, 7, "/agent clu", None);
    until("the switch", || tg.sent_to(GROUP).len() == 1).await;
    model.on(
        Some("plan"),
        Reply::paced(ANSWER, 5, Duration::from_millis(300)),
    );
    tg.group(GROUP, 7, "the plan?", None);
    until("the final text", || {
        tg.sent_to(GROUP)
            .get(1)
            .is_some_and(|m| m.text == markdown_to_html(ANSWER))
    })
    .await;
    let r = model.requests();
    let last = r.last().unwrap();
    assert_eq!(last.format, crate::support::fake_model::Format::OpenAi);
    assert!(last.streamed);
    assert_eq!(last.body["stream_options"]["include_usage"], true);
    assert!(tg.edits().len() >= 2, "{:?}", tg.edits());
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_mid_stream_keeps_what_was_written_and_marks_it() {
    let (model, tg, _gw) = telegram("").await;
    let gate = Gate::default();
    model.on(
        Some("essay"),
        Reply::Stream {
            chunks: vec![
                Chunk::Text("The history of ".into()),
                Chunk::Pause(Duration::from_millis(100)),
                Chunk::Text("the printing press".into()),
                Chunk::Hold(gate.clone()),
                Chunk::Text(" is long.".into()),
            ],
            tool: None,
        },
    );
    tg.group(GROUP, 7, "write an essay", None);
    until("the preview", || {
        tg.sent_to(GROUP)
            .first()
            .is_some_and(|m| m.text.contains("printing press"))
            || tg.edits().iter().any(|e| e.text.contains("printing press"))
    })
    .await;
    tg.group(GROUP, 7, "/stop", None);
    until("the stopped answer", || {
        tg.sent_to(GROUP)
            .iter()
            .any(|m| m.text.contains("(stopped)"))
    })
    .await;
    let texts: Vec<String> = tg.sent_to(GROUP).iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(
        texts[0],
        markdown_to_html("The history of the printing press\n\n⏹ (stopped)")
    );
    assert_eq!(texts[1], "⏹ Stopping the answer in progress.");
    gate.open();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_during_a_streamed_turn_is_answered_after_it() {
    let (model, tg, _gw) = telegram("").await;
    model.on(
        Some("first"),
        Reply::paced(
            "The first answer, written slowly.",
            4,
            Duration::from_millis(300),
        ),
    );
    tg.group(GROUP, 7, "first question", None);
    until("the preview", || !tg.sent_to(GROUP).is_empty()).await;
    tg.group(GROUP, 7, "second question", None);
    until("both answers", || tg.sent_to(GROUP).len() == 2).await;
    until("the first answer complete", || {
        tg.sent_to(GROUP)[0].text == "The first answer, written slowly."
    })
    .await;
    let texts: Vec<String> = tg.sent_to(GROUP).iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts[1], "echo: second question");
    // The second turn saw the first one whole in its history.
    let history = model.requests().last().unwrap().transcript();
    assert!(
        history.contains(&"The first answer, written slowly.".to_string()),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_mid_stream_leaves_one_complete_message_after_restart() {
    let (model, tg, mut gw) = telegram("").await;
    let gate = Gate::default();
    model.on(
        Some("report"),
        Reply::Stream {
            chunks: vec![
                Chunk::Text("Weekly report: ".into()),
                Chunk::Pause(Duration::from_millis(100)),
                Chunk::Text("sales are up".into()),
                Chunk::Hold(gate.clone()),
                Chunk::Text(" and costs are down.".into()),
            ],
            tool: None,
        },
    );
    let final_text = "Weekly report: sales are up and costs are down. Well done, everyone.";
    model.on(
        Some("report"),
        Reply::paced(final_text, 4, Duration::from_millis(200)),
    );
    tg.group(GROUP, 7, "the weekly report please", None);
    until("the half-written preview", || {
        tg.sent_to(GROUP)
            .first()
            .is_some_and(|m| m.text.contains("sales are up"))
    })
    .await;
    gw.stop("KILL").await;
    gw.restart().await;
    until("the complete message", || {
        tg.sent_to(GROUP)
            .first()
            .is_some_and(|m| m.text == final_text)
    })
    .await;
    tg.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = tg.sent_to(GROUP);
    assert_eq!(
        sent.len(),
        1,
        "the preview was completed, not duplicated: {sent:?}"
    );
    assert_eq!(sent[0].text, final_text);
    gate.open();
}

#[tokio::test(flavor = "multi_thread")]
async fn discord_sends_one_message_and_edits_it_through_a_rate_limit() {
    let (model, d, gw) = discord_gateway("").await;
    let long = long_text(2600);
    model.on(
        Some("story"),
        Reply::paced(&long, 12, Duration::from_millis(300)),
    );
    d.rate_limit_next_edit(1.0);
    d.message(41, Some(40), 31, "tell me a story", false);
    let expected = switchboard_channel::split_message(&long, 2000);
    until("the final parts", || {
        let sent: Vec<String> = d.sent().iter().map(|m| m.content.clone()).collect();
        sent == expected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent: Vec<String> = d.sent().iter().map(|m| m.content.clone()).collect();
    assert_eq!(sent, expected, "exactly the unstreamed parts, once");
    assert!(
        d.edits().len() >= 2,
        "edited while written: {:?}",
        d.edits().len()
    );
    assert!(gw.log().contains("preview rate limited"), "the 429 was met");
}
