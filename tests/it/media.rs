//! Images and documents in: a Telegram photo reaches the model as an image block (downscaled to
//! the providers' limits, both wire formats) with its caption, a text file inline as data, a PDF
//! as a note of where it is stored, and a file over the limit is refused before it is
//! downloaded.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::*;

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_reaches_the_model_as_an_image_with_its_caption() {
    let (model, tg, gw) = telegram_gateway("").await;
    let big = jpeg(2400, 1600);
    let size = big.len() as u64;
    tg.photo(111, "ph1", big, size, "what is in this picture?");
    tg.wait_sent(|s| !s.is_empty()).await;
    let req = model.requests().last().unwrap().clone();
    let user = req.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let blocks = user["content"].as_array().unwrap();
    assert_eq!(blocks[0]["text"], "what is in this picture?");
    let image = blocks
        .iter()
        .find(|b| b["type"] == "image")
        .unwrap_or_else(|| panic!("no image block in {user}"));
    assert_eq!(image["source"]["media_type"], "image/jpeg");
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(image["source"]["data"].as_str().unwrap())
        .unwrap();
    let seen = image::load_from_memory(&data).unwrap();
    assert_eq!(
        (seen.width(), seen.height()),
        (1568, 1045),
        "downscaled to the providers' limit"
    );
    // Kept in the workspace, original beside the model's copy.
    let day = std::fs::read_dir(gw.workspace("jarvis").join("files"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let names: Vec<String> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(tg.downloads(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn images_reach_openai_format_models_and_documents_are_inlined_or_noted() {
    let (model, tg, _gw) = telegram_gateway(
        r#"routing: [ { match: { channel: "telegram", chat: "222" }, agent: "clu" } ],"#,
    )
    .await;
    // clu speaks the OpenAI format: the image is an image_url part beside the caption.
    let small = jpeg(40, 30);
    let size = small.len() as u64;
    tg.photo(222, "ph2", small, size, "and this one?");
    tg.wait_sent(|s| s.iter().any(|m| m.chat_id == 222)).await;
    let req = model.requests().last().unwrap().clone();
    let user = req.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let parts = user["content"]
        .as_array()
        .unwrap_or_else(|| panic!("{user}"));
    let caption = parts[0]["text"].as_str().unwrap();
    assert!(
        caption.starts_with("and this one?\n[the user sent an image, saved as files/"),
        "{caption}"
    );
    assert!(
        parts.iter().any(|p| p["type"] == "image_url"
            && p["image_url"]["url"]
                .as_str()
                .unwrap()
                .starts_with("data:image/jpeg;base64,")),
        "{user}"
    );

    // A text file is inlined as data; a PDF is noted with where it is stored.
    tg.document(
        111,
        "doc1",
        "notes.md",
        "text/markdown",
        b"# Plan\n- ship it".to_vec(),
        "read this",
    );
    tg.wait_sent(|s| s.iter().any(|m| m.chat_id == 111)).await;
    let t = model.requests().last().unwrap().last_user_text();
    assert!(
        t.contains("read this")
            && t.contains("# Plan")
            && t.contains("<untrusted source=\"file notes.md\">"),
        "{t}"
    );
    tg.document(
        111,
        "doc2",
        "report.pdf",
        "application/pdf",
        b"%PDF-1.4 ...".to_vec(),
        "",
    );
    tg.wait_sent(|s| s.iter().filter(|m| m.chat_id == 111).count() >= 2)
        .await;
    let req = model.requests().last().unwrap().clone();
    let t = req.last_user_text();
    assert!(
        t.contains("report.pdf (") && t.contains("saved as files/"),
        "{t}"
    );
    // Anthropic reads PDFs: it gets the document itself.
    let user = req.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let doc = user["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "document")
        .unwrap_or_else(|| panic!("no document block in {user}"))
        .clone();
    assert_eq!(doc["source"]["media_type"], "application/pdf");
    assert_eq!(doc["title"], "report.pdf");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_over_the_limit_is_refused_before_download() {
    let (model, tg, _gw) = telegram_gateway("").await;
    // A document has no smaller size to fall back to (a photo would use its largest size a bot
    // may download).
    tg.push(serde_json::json!({ "message": {
        "message_id": 77, "date": 1_700_000_000,
        "chat": { "id": 111, "type": "private", "first_name": "U" },
        "from": { "id": 111, "is_bot": false, "first_name": "U" },
        "document": { "file_id": "huge", "file_unique_id": "u-huge", "file_name": "video.mov",
                      "mime_type": "video/quicktime", "file_size": 25 * 1024 * 1024 }
    } }));
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert!(
        sent[0].text.contains("larger than the 20.0 MB I can take"),
        "{}",
        sent[0].text
    );
    assert_eq!(tg.downloads(), 0, "nothing was downloaded");
    assert!(model.requests().is_empty(), "nothing reached the model");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_without_vision_gets_a_note_instead_of_the_image() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::gateway::free_port();
    let text = crate::support::gateway::config_text(
        &model.url,
        port,
        &dir.path().join("state"),
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            tg.url
        ),
    )
    .replace(
        r#"apiKey: "sk-ant-test-SECRET", baseUrl"#,
        r#"apiKey: "sk-ant-test-SECRET", vision: false, baseUrl"#,
    );
    assert!(text.contains("vision: false"));
    let _gw = TestGateway::start_in(dir, port, &text).await;
    let pic = jpeg(20, 20);
    let size = pic.len() as u64;
    tg.photo(111, "ph3", pic, size, "look");
    // The notice comes before the answer: wait for the answer.
    tg.wait_sent(|s| s.iter().any(|m| m.text.starts_with("echo")))
        .await;
    let req = model.requests().last().unwrap().clone();
    let body = req.body.to_string();
    assert!(!body.contains("\"type\":\"image\""), "{body}");
    assert!(
        req.last_user_text()
            .contains("this model cannot see images"),
        "{}",
        req.last_user_text()
    );
    // The chat is told once, not at every photo.
    let pic = jpeg(20, 20);
    let size = pic.len() as u64;
    tg.photo(111, "ph4", pic, size, "and this");
    tg.wait_sent(|s| s.iter().filter(|m| m.text.starts_with("echo")).count() >= 2)
        .await;
    let told: Vec<String> = tg
        .sent()
        .iter()
        .filter(|m| m.text.starts_with("ℹ️") && m.text.contains("cannot see images"))
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("anthropic/claude-test"), "{told:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_arrives_as_one_message_with_every_photo() {
    let (model, tg, _gw) = telegram_gateway("").await;
    tg.album(
        111,
        vec![
            ("a1", jpeg(30, 20)),
            ("a2", jpeg(20, 30)),
            ("a3", jpeg(25, 25)),
        ],
        "our trip",
    );
    tg.wait_sent(|s| !s.is_empty()).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(model.requests().len(), 1, "one turn for the album");
    assert_eq!(tg.sent().len(), 1, "one answer");
    let req = model.requests().last().unwrap().clone();
    let user = req.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let images = user["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "image")
        .count();
    assert_eq!(images, 3, "{user}");
    assert_eq!(user["content"][0]["text"], "our trip");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_reaches_an_openai_compatible_model_as_its_text() {
    let (model, tg, gw) = telegram_gateway("").await;
    tg.dm(111, "/agent clu");
    tg.wait_sent(|s| !s.is_empty()).await;
    let pdf = switchboard::media::pdf::testing::pdf_with_text("Invoice 4711 is due on Friday");
    tg.document(
        111,
        "pdf1",
        "invoice.pdf",
        "application/pdf",
        pdf,
        "when is it due?",
    );
    tg.wait_sent(|s| s.len() >= 2).await;
    let req = model.requests().last().unwrap().clone();
    assert_eq!(req.format, crate::support::fake_model::Format::OpenAi);
    let user = req.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let text = user["content"].to_string();
    assert!(
        text.contains("Invoice 4711 is due on Friday")
            && text.contains("untrusted source=\\\"file invoice.pdf\\\"")
            && text.contains("when is it due?"),
        "{user}"
    );
    // Kept beside the PDF, so later turns do not parse it again.
    let files = gw.workspace("clu").join("files");
    let kept: Vec<_> = walk(&files)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("invoice.pdf.txt"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
