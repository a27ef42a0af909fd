//! Files out: the `send_file` tool and `switchboard send --file` post a workspace file through
//! the outbox — a photo as a photo, anything else as a document — on Telegram and Discord, with
//! the text as caption (or first, when too long for one); paths outside the workspace, missing
//! files and files over the platform's limit are refused with a clear reason, before upload.

use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::*;
use serde_json::json;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn send_file(path: &str, caption: &str) -> Reply {
    Reply::Tool {
        name: "send_file".into(),
        input: json!({ "path": path, "caption": caption }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_file_posts_documents_and_photos_on_telegram_and_refuses_escapes() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            tg.url
        ),
    )
    .await;
    let ws = gw.workspace("jarvis");
    std::fs::create_dir_all(ws.join("out")).unwrap();
    std::fs::write(ws.join("out/report.pdf"), b"%PDF-1.4 a small report").unwrap();
    std::fs::write(ws.join("chart.png"), PNG).unwrap();
    model.on(
        Some("report"),
        send_file("out/report.pdf", "Here is the *report*"),
    );
    model.on(Some("report"), send_file("chart.png", ""));
    model.on(Some("report"), send_file("../../../config.json5", ""));
    model.on(Some("report"), send_file("nope.txt", ""));
    model.on(Some("report"), Reply::Text("Sent both.".into()));
    tg.dm(111, "send me the report");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "Sent both."))
        .await;
    let files = tg.files_sent();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0].method, "senddocument");
    assert_eq!(files[0].upload.file_name, "report.pdf");
    assert_eq!(files[0].upload.mime, "application/pdf");
    assert_eq!(files[0].upload.bytes, b"%PDF-1.4 a small report");
    assert_eq!(
        files[0].caption.as_deref(),
        Some("Here is the <i>report</i>")
    );
    assert_eq!(files[0].chat_id, 111);
    assert_eq!(files[1].method, "sendphoto");
    assert_eq!(files[1].upload.bytes, PNG);
    assert_eq!(files[1].caption, None);
    let results = model.requests().last().unwrap().tool_results();
    assert!(results[0].contains("queued"), "{results:?}");
    assert!(results[2].contains("outside your workspace"), "{results:?}");
    assert!(results[3].contains("no file `nope.txt`"), "{results:?}");
    // The queued copies are gone once delivered.
    let copies = std::fs::read_dir(ws.join("../../outbox-files"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(copies, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn send_file_attaches_on_discord() {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            d.api_url
        ),
    )
    .await;
    d.wait_until("the bot to identify", |d| {
        d.identifies() >= 1 && d.connected()
    })
    .await;
    std::fs::write(
        gw.workspace("jarvis").join("notes.txt"),
        "line one\nline two\n",
    )
    .unwrap();
    model.on(Some("notes"), send_file("notes.txt", "your notes"));
    model.on(Some("notes"), Reply::Text("attached".into()));
    d.message(500_042, None, 42, "send my notes", false);
    let sent = d
        .wait_sent(|s| s.iter().any(|m| m.content == "attached"))
        .await;
    let file = sent.iter().find(|m| m.attachment.is_some()).unwrap();
    assert_eq!(file.channel, 500_042);
    assert_eq!(file.content, "your notes");
    let a = file.attachment.as_ref().unwrap();
    assert_eq!(a.file_name, "notes.txt");
    assert_eq!(a.mime, "text/plain");
    assert_eq!(a.bytes, b"line one\nline two\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_with_a_file_from_the_cli_and_a_file_over_the_limit_refused_before_upload() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            tg.url
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("sunset.png");
    std::fs::write(&photo, PNG).unwrap();
    let out = gw
        .cli(&[
            "send",
            "--to",
            "telegram:111",
            "--file",
            photo.to_str().unwrap(),
            "Tonight's",
            "sunset",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("`sunset.png` queued for telegram:111"),
        "{}",
        stdout(&out)
    );
    // A caption longer than Telegram's 1024 goes first as text, the file after it.
    let long = "word ".repeat(300);
    let out = gw
        .cli(&[
            "send",
            "--to",
            "telegram:111",
            "--file",
            photo.to_str().unwrap(),
            &long,
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let big = dir.path().join("huge.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(51 * 1024 * 1024)
        .unwrap();
    let out = gw
        .cli(&[
            "send",
            "--to",
            "telegram:111",
            "--file",
            big.to_str().unwrap(),
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("takes files up to 50 MB"),
        "{}",
        stderr(&out)
    );
    let out = gw
        .cli(&[
            "send",
            "--to",
            "telegram:111",
            "--file",
            "/nonexistent/x.pdf",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    for _ in 0..200 {
        if tg.files_sent().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let files = tg.files_sent();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0].caption.as_deref(), Some("Tonight's sunset"));
    assert_eq!(files[1].caption, None);
    let texts: Vec<String> = tg.sent_to(111).iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].trim(), long.trim());
    assert!(files.iter().all(|f| f.upload.file_name != "huge.bin"));
}
