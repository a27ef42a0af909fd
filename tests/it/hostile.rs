//! Bad input from every side: model replies full of `<`, `&` and broken Markdown (Telegram must
//! accept our HTML — the fake checks it as Telegram does), garbage and control characters and
//! 50,000-character messages from users, and updates of shapes teloxide does not know.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::*;
use serde_json::json;
use std::time::Duration;

async fn setup() -> (FakeModel, FakeTelegram, TestGateway) {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
        tg.url
    );
    let gw = TestGateway::start(&model, &extra).await;
    (model, tg, gw)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_model_replies_render_as_html_telegram_accepts() {
    let (model, tg, _gw) = setup().await;
    let long_mixed = "x < y && z > w; ".repeat(600); // 9,600 chars, > 2 messages
    let replies: Vec<String> = vec![
        "a < b && c > d".into(),
        "<script>alert('x')</script> & <b>model html</b>".into(),
        "**bold *nested* never closed".into(),
        "```rust\nfn main() { let a = b < c && d > e; }\n".into(), // unclosed fence
        "`code <with> & stuff`".into(),
        "[a link](http://example.com/?a=1&b=<2>\"q\")".into(),
        "&amp; already escaped &lt; and a bare &".into(),
        "| a | <b> |\n|---|---|\n| & | \"q\" |".into(),
        "# Heading <h1>\n\n> quote <\n>> nested &\n\n- item <\n  - sub &".into(),
        "~~strike~~ <s>not a tag</s> ***".into(),
        "\u{0}\u{1}\u{1b}[31mcontrol\u{7f} chars \u{200b}\u{feff}".into(),
        "emoji 👍🏽 🇬🇧 and math ∑ < ∞".into(),
        "_under_score_ *star* __double__ `tick".into(),
        "<<<>>>&&&;;;".into(),
        "a\\\nb \\*escaped\\* \\".into(),
        long_mixed.clone(),
        format!("```\n{}\n```", "<tag> & ".repeat(700)), // one code block split over parts
        "😀".repeat(3000), // 6,000 UTF-16 units: Telegram's 4096 counts those
    ];
    for (i, r) in replies.iter().enumerate() {
        model.on(Some(&format!("hostile {i};")), Reply::Text(r.clone()));
    }
    for i in 0..replies.len() {
        tg.dm(111, &format!("hostile {i};"));
    }
    // Every reply arrives (the last two in several parts), each as HTML Telegram accepted.
    let sent = tg
        .wait_sent_up_to(800, |s| {
            (0..replies.len()).all(|i| s.iter().filter(|m| m.reply_to.is_some()).count() > i)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = if tg.sent().len() > sent.len() {
        tg.sent()
    } else {
        sent
    };
    let plain: Vec<_> = sent
        .iter()
        .filter(|m| m.parse_mode.as_deref() != Some("HTML"))
        .map(|m| m.text.clone())
        .collect();
    assert!(plain.is_empty(), "fell back to plain text: {plain:#?}");
    assert!(sent.len() >= replies.len() + 3, "{} messages", sent.len());
    for m in &sent {
        let visible = crate::support::fake_telegram::telegram_html(&m.text).unwrap();
        assert!(visible.encode_utf16().count() <= 4096);
    }
    // The user sees what the model wrote, escaped, not eaten.
    let all: String = sent.iter().map(|m| m.text.clone()).collect();
    assert!(all.contains("a &lt; b &amp;&amp; c &gt; d"), "{all}");
    assert!(all.contains("&lt;script&gt;"), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_huge_and_strange_inbound_messages_are_survived() {
    let (model, tg, mut gw) = setup().await;
    // Updates teloxide cannot parse, or kinds it does not know: skipped, and confirmed.
    tg.push_raw(json!({ "brand_new_update_kind": { "x": 1 } }));
    tg.push_raw(json!({ "message": { "message_id": "not a number", "chat": 5 } }));
    tg.push_raw(
        json!({ "message": { "message_id": 1, "date": 1, "chat": { "id": 1, "type": "private" },
        "from": { "id": 1, "is_bot": false, "first_name": "A" }, "text": { "nested": true } } }),
    );
    // Control characters and binary-looking text.
    let garbage = "\u{0}\u{1}\u{2}\u{7}\u{8}\u{1b}[2J\u{7f}\u{fffd}\u{fffe}\u{10ffff} \u{202e}RTL";
    tg.dm(301, garbage);
    // 50,000 characters.
    let huge = "word ".repeat(10_000);
    tg.dm(302, &huge);
    tg.dm(303, "still fine?");
    let sent = tg
        .wait_sent_up_to(800, |s| {
            s.iter().any(|m| m.chat_id == 303) && s.iter().any(|m| m.chat_id == 302)
        })
        .await;
    assert!(sent.iter().any(|m| m.chat_id == 301), "{sent:#?}");
    assert_eq!(
        sent.iter().find(|m| m.chat_id == 303).unwrap().text,
        "echo: still fine?"
    );
    // The model got the whole 50,000 characters, and the echo came back in parts that fit.
    assert!(
        model
            .requests()
            .iter()
            .any(|r| r.body.to_string().contains(&huge)),
        "the long message was cut"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let parts = tg.sent_to(302);
    let words: usize = parts.iter().map(|m| m.text.matches("word").count()).sum();
    assert!(parts.len() >= 13, "{} parts", parts.len());
    assert_eq!(words, 10_000, "words lost between parts");
    // Nothing is left unconfirmed (no redelivery loop on the bad updates), and we are alive.
    assert_eq!(tg.unconfirmed(), 0);
    assert!(gw.running(), "{}", gw.log());
}
