//! The Telegram channel through the real gateway and teloxide, against the fake Bot API.

use crate::support::fake_telegram::{FakeTelegram, Fault};
use crate::support::*;
use std::time::Duration;

fn channel(tg: &FakeTelegram, rest: &str) -> String {
    format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", {rest} }} }},"#,
        tg.url
    )
}

async fn setup(rest: &str) -> (FakeModel, FakeTelegram, TestGateway) {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(&model, &channel(&tg, rest)).await;
    (model, tg, gw)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_message_gets_a_reply_with_typing_and_the_command_menu() {
    let (model, tg, gw) = setup(r#"dmPolicy: "open""#).await;
    model.on(
        Some("hello"),
        Reply::Delay(
            Duration::from_millis(300),
            Box::new(Reply::Text("Hi Alice!".into())),
        ),
    );
    let id = tg.dm(111, "hello");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].chat_id, 111);
    assert_eq!(sent[0].text, "Hi Alice!");
    assert_eq!(sent[0].reply_to, Some(id));
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert!(tg.actions().contains(&(111, "typing".to_string())));
    assert!(tg.commands().contains(&"task".to_string()));
    // The update was confirmed (offset moved past it) only after being stored.
    assert!(tg.confirmed() >= 2);
    let stored = gw.count("SELECT count(*) FROM inbox WHERE target = 'telegram:111'");
    assert_eq!(stored, 1);
    assert!(
        !gw.log().contains("SECRET"),
        "the bot token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pairing_gives_one_code_and_approval_lets_the_sender_in() {
    let (_model, tg, gw) = setup(r#"dmPolicy: "pairing""#).await;
    tg.dm(222, "hello?");
    tg.dm(222, "anyone there?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    let code_line = sent[0]
        .text
        .lines()
        .find(|l| l.contains("switchboard pairing approve telegram"))
        .expect("the reply names the command")
        .to_string();
    let code = code_line.rsplit(' ').next().unwrap().to_string();
    assert_eq!(code.len(), 8);
    let out = gw.cli(&["pairing", "list"]).await;
    assert!(stdout(&out).contains(&code), "{}", stdout(&out));
    // Still one reply after the second message (no reply per message).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tg.sent_to(222).len(), 1);

    let out = gw.cli(&["pairing", "approve", "telegram", &code]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("approved telegram user 222"));
    tg.dm(222, "hi again");
    let sent = tg
        .wait_sent(|s| s.iter().any(|m| m.text == "echo: hi again"))
        .await;
    assert_eq!(sent.iter().filter(|m| m.chat_id == 222).count(), 2);

    let out = gw.cli(&["pairing", "revoke", "telegram", "222"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gw
        .cli(&["pairing", "approve", "telegram", "ZZZZZZZZ"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no live pairing code"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allowlist_ignores_strangers_silently() {
    let (_model, tg, _gw) = setup(r#"dmPolicy: "allowlist", allowFrom: [111]"#).await;
    tg.dm(333, "let me in");
    tg.dm(111, "ping");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: ping"))
        .await;
    assert!(tg.sent_to(333).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_need_to_be_allowed_and_to_mention_the_bot() {
    let (_model, tg, _gw) = setup(
        r#"dmPolicy: "open", groups: { "-100123": { requireMention: true }, "-100777": { requireMention: false } }"#,
    )
    .await;
    tg.group(-100123, 5, "talking among ourselves", None);
    tg.group(-100999, 5, "@jarvis_bot not an allowed group", None);
    let id = tg.group(-100123, 5, "@jarvis_bot what's the plan?", None);
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].chat_id, -100123);
    assert_eq!(sent[0].text, "echo: what's the plan?");
    assert_eq!(sent[0].reply_to, Some(id));
    // A forum topic in a group without requireMention: answered in the same topic.
    tg.group(-100777, 6, "status of the deploy", Some(42));
    let sent = tg
        .wait_sent(|s| s.iter().any(|m| m.chat_id == -100777))
        .await;
    let topic = sent.iter().find(|m| m.chat_id == -100777).unwrap();
    assert_eq!(topic.thread, Some(42));
    assert_eq!(topic.text, "echo: status of the deploy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(tg.sent_to(-100999).is_empty());
    assert_eq!(tg.sent_to(-100123).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_reply_arrives_as_ordered_parts_within_the_limit() {
    let (model, tg, _gw) = setup(r#"dmPolicy: "open""#).await;
    let paragraphs: Vec<String> = (0..50)
        .map(|i| format!("Paragraph {i:02} {}", "lorem ipsum ".repeat(16).trim_end()))
        .collect();
    let long = paragraphs.join("\n\n");
    assert!(long.chars().count() >= 10_000);
    model.on(Some("essay"), Reply::Text(long.clone()));
    tg.dm(111, "essay please");
    let total: usize = paragraphs.len();
    let sent = tg
        .wait_sent(|s| {
            s.iter()
                .any(|m| m.text.contains(&format!("Paragraph {:02}", total - 1)))
        })
        .await;
    assert!(sent.len() >= 3, "{} parts", sent.len());
    for part in &sent {
        assert!(
            part.text.chars().count() <= 4096,
            "part of {} chars",
            part.text.chars().count()
        );
    }
    let joined = sent
        .iter()
        .map(|m| m.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(joined, long, "parts are in order and lose nothing");
    assert!(sent[1..].iter().all(|m| m.reply_to.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_is_rendered_as_html_or_falls_back_to_plain_text() {
    let (model, tg, _gw) = setup(r#"dmPolicy: "open""#).await;
    let md = "**Note:** a < b & c\n\n```rust\nlet x = 1 < 2;\n```";
    model.on(Some("format"), Reply::Text(md.into()));
    tg.dm(111, "format this");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(
        sent[0].text,
        "<b>Note:</b> a &lt; b &amp; c\n\n<pre><code class=\"language-rust\">let x = 1 &lt; 2;</code></pre>"
    );
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));

    // Telegram refuses the entities: the same reply goes out as plain text, once.
    tg.fail(
        "sendMessage",
        Fault::Error {
            code: 400,
            description:
                "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0"
                    .into(),
            retry_after: None,
        },
    );
    model.on(Some("again"), Reply::Text(md.into()));
    tg.dm(111, "again");
    let sent = tg.wait_sent(|s| s.len() == 2).await;
    assert_eq!(sent[1].text, md);
    assert_eq!(sent[1].parse_mode, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_honoured_and_the_reply_is_sent_once() {
    let (_model, tg, _gw) = setup(r#"dmPolicy: "open""#).await;
    tg.fail(
        "sendMessage",
        Fault::Error {
            code: 429,
            description: "Too Many Requests: retry after 1".into(),
            retry_after: Some(1),
        },
    );
    tg.dm(111, "busy?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, "echo: busy?");
    let attempts = tg.send_attempts();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[1] - attempts[0] >= Duration::from_millis(950),
        "waited retry_after"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_receiving_and_replying_gives_exactly_one_reply() {
    let (model, tg, mut gw) = setup(r#"dmPolicy: "open""#).await;
    model.on(
        Some("crash"),
        Reply::Hold(Gate::default(), Box::new(Reply::Text("never".into()))),
    );
    let id = tg.dm(111, "crash now");
    model.wait_requests(1).await;
    gw.stop("KILL").await;
    gw.restart().await;
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].text, "echo: crash now");
    assert_eq!(sent[0].reply_to, Some(id));
    // Another message after the restart is answered too, and nothing is doubled.
    tg.dm(111, "still there?");
    let sent = tg.wait_sent(|s| s.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tg.sent().len(), 2, "{sent:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_to_a_telegram_chat_and_voice_notes_get_a_clear_reply() {
    let (_model, tg, gw) = setup(r#"dmPolicy: "open""#).await;
    let out = gw
        .cli(&["send", "--to", "telegram:555", "Reminder: stand-up"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    tg.wait_sent(|s| {
        s.iter()
            .any(|m| m.chat_id == 555 && m.text == "Reminder: stand-up")
    })
    .await;
    tg.voice(111, "VOICE1", b"OggS-not-really".to_vec(), 3);
    let sent = tg.wait_sent(|s| s.iter().any(|m| m.chat_id == 111)).await;
    let reply = sent.iter().find(|m| m.chat_id == 111).unwrap();
    // The "voice note" is not audio: a polite reply, and the gateway keeps serving.
    assert!(
        reply.text.starts_with("I couldn't read that voice note"),
        "{}",
        reply.text
    );
    tg.dm(111, "still fine?");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: still fine?"))
        .await;
}

/// Regression: a 502 from `getMe` at start-up was taken for a rejected token and stopped the
/// channel until a restart. Only 401 (Telegram's answer to a bad token) is fatal.
#[tokio::test(flavor = "multi_thread")]
async fn server_errors_at_start_up_are_retried_and_only_a_rejected_token_stops_the_channel() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    for code in [502, 500] {
        tg.fail(
            "getMe",
            Fault::Error {
                code,
                description: "Bad Gateway".into(),
                retry_after: None,
            },
        );
    }
    tg.fail("getMe", Fault::Malformed);
    let gw = TestGateway::start(&model, &channel(&tg, r#"dmPolicy: "open""#)).await;
    tg.dm(111, "still there?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].text, "echo: still there?");
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&gw.cli(&["gateway", "status", "--json"]).await)).unwrap();
    let telegram = status["channel_health"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "telegram")
        .cloned()
        .unwrap();
    assert_eq!(telegram["state"], "connected", "{status}");
    assert!(!gw.log().contains("token was rejected"), "{}", gw.log());

    // A rejected token: the channel stops, and says so in status and doctor.
    let tg2 = FakeTelegram::start().await;
    tg2.fail(
        "getMe",
        Fault::Error {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
        },
    );
    let gw2 = TestGateway::start(&model, &channel(&tg2, r#"dmPolicy: "open""#)).await;
    let mut line = String::new();
    for _ in 0..200 {
        line = stdout(&gw2.cli(&["gateway", "status"]).await);
        if line.contains("telegram (stopped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        line.contains("telegram (stopped: telegram: the bot token was rejected"),
        "{line}"
    );
    let doctor = gw2.cli(&["doctor"]).await;
    let report = stdout(&doctor) + &stderr(&doctor);
    assert!(report.contains("stopped"), "{report}");
    assert!(
        !report.contains("SECRET") && !line.contains("SECRET"),
        "{report}"
    );
}

/// Regression: `/new@other_bot` in a group reset our session. A command addressed to another
/// bot is not ours: not run, not answered; one addressed to us runs even where a mention is
/// required.
#[tokio::test(flavor = "multi_thread")]
async fn commands_for_another_bot_are_ignored_and_ours_run() {
    let (model, tg, _gw) = setup(
        r#"dmPolicy: "open", groups: { "-100123": { requireMention: true }, "-100777": { requireMention: false } }"#,
    )
    .await;
    tg.group(-100777, 5, "remember the plan", None);
    tg.wait_sent(|s| s.len() == 1).await;
    tg.group(-100777, 5, "/new@other_bot", None);
    tg.group(-100123, 5, "/status@other_bot", None);
    let id = tg.group(-100123, 5, "/help@jarvis_bot", None);
    let sent = tg.wait_sent(|s| s.len() == 2).await;
    assert_eq!(sent[1].reply_to, Some(id), "{sent:#?}");
    // The session survived: the next turn still carries the earlier message.
    tg.group(-100777, 5, "and now?", None);
    tg.wait_sent(|s| s.len() == 3).await;
    let last = model.requests().last().cloned().unwrap();
    assert!(
        last.body.to_string().contains("remember the plan"),
        "the session was reset: {}",
        last.body
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tg.sent().len(), 3, "{:#?}", tg.sent());
}

/// A second burst of replies to the same 40 chats goes out over the connections the first one
/// opened: each new connection to the Bot API or a provider is, over TLS, a handshake, and
/// keeping only a handful idle made every wave of a burst connect again.
#[tokio::test(flavor = "multi_thread")]
async fn bursts_of_replies_reuse_their_connections() {
    // Without live previews: the outbox's sends (at most 16 at once) are all there is to count.
    let (model, tg, _gw) = setup(r#"dmPolicy: "open", streaming: false"#).await;
    let chats = 40;
    let mut opened = Vec::new();
    for round in 0..2 {
        let before = tg.sent().len();
        let counts = (model.connections(), tg.connections(), tg.actions().len());
        for i in 0..chats {
            tg.dm(7000 + i, &format!("burst {round}"));
        }
        tg.wait_sent(|s| s.len() >= before + chats as usize).await;
        opened.push((
            model.connections() - counts.0,
            tg.connections() - counts.1,
            tg.actions().len() - counts.2,
        ));
    }
    println!("connections opened per burst (model, Telegram, typing indicators): {opened:?}");
    let (to_model, to_telegram, typing) = opened[1];
    // The first burst's connections were kept: the second opens few (one may open while
    // another is on its way back to the pool). Keeping 8 to the model and 4 to Telegram, it
    // opened 22–32 and 22–25 (0–2 and 1–5 now).
    assert!(
        to_model <= 10,
        "the second burst opened {to_model} to the model"
    );
    // A slow machine may show typing indicators, which may need connections of their own while
    // the sends hold theirs.
    assert!(
        to_telegram <= 10 + typing,
        "the second burst opened {to_telegram} to Telegram ({typing} typing indicators)"
    );
}
