//! Voice notes with the real whisper model (`../shared/models/ggml-tiny.en.bin`, or
//! `SWITCHBOARD_TEST_WHISPER_MODEL`) and the real spoken samples in `../shared/audio/`.
//! Without a model these tests skip with a reason — except under `CI=true`, where that fails.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::voice::{audio, shared, transcribe_json, whisper_model as model};
use crate::support::*;
use std::path::PathBuf;

/// `secs` of digital silence as a 16 kHz mono WAV.
fn silent_wav(secs: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for _ in 0..secs * 16_000 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

/// The key words each sample must yield (what tiny.en hears reliably; see shared/models/README.md).
const SAMPLES: &[(&str, &[&str])] = &[
    ("s1", &["Good morning Jarvis", "remind me to call"]),
    ("s2", &["London tomorrow"]),
    ("s3", &["milk", "shopping list"]),
    ("s4", &["Alice", "10 minutes late"]),
    ("s5", &["timer", "kitchen"]),
];

#[tokio::test(flavor = "multi_thread")]
async fn transcribe_reads_every_sample_as_wav_and_as_ogg_opus() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json5");
    std::fs::write(
        &cfg,
        format!("{{ stateDir: \"{}\" }}", dir.path().display()),
    )
    .unwrap();
    for (name, words) in SAMPLES {
        for ext in ["wav", "ogg"] {
            let file = shared().join("audio").join(format!("{name}.{ext}"));
            let out = crate::support::gateway::run_cli(
                &cfg,
                &[
                    "transcribe",
                    file.to_str().unwrap(),
                    "--model",
                    model.to_str().unwrap(),
                ],
                "",
            )
            .await;
            assert!(out.status.success(), "{name}.{ext}: {}", stderr(&out));
            let text = stdout(&out);
            for w in *words {
                assert!(text.contains(w), "{name}.{ext}: `{w}` not in {text:?}");
            }
        }
    }
    let (_, v) = transcribe_json(&cfg, &shared().join("audio/s2.ogg"), &model).await;
    assert!(v["segments"][0]["end_secs"].as_f64().unwrap() > 1.0);
    assert!((v["audio_secs"].as_f64().unwrap() - 3.5).abs() < 0.3);
    // Not audio at all: a clear error, exit 1.
    let out = crate::support::gateway::run_cli(
        &cfg,
        &[
            "transcribe",
            cfg.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not an audio format"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_voice_note_is_echoed_and_answered_and_bad_notes_get_polite_replies() {
    let Some(model_path) = model() else { return };
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SECRET", apiUrl: "{}", dmPolicy: "open" }} }},
           voice: {{ model: "{}", maxSeconds: 60 }},"#,
        tg.url,
        model_path.display()
    );
    let gw = TestGateway::start(&model, &extra).await;
    // Two notes at once: both transcribed (one waits for the other).
    tg.voice(111, "V1", audio("s2.ogg"), 4);
    tg.voice(222, "V2", audio("s3.ogg"), 4);
    let sent = tg
        .wait_sent_up_to(4800, |s| {
            s.iter().filter(|m| m.text.starts_with("echo:")).count() == 2
        })
        .await;
    let to = |chat: i64| {
        sent.iter()
            .filter(|m| m.chat_id == chat)
            .map(|m| m.text.clone())
            .collect::<Vec<_>>()
    };
    let a = to(111);
    assert!(
        a[0].starts_with("🎙️ ") && a[0].contains("London tomorrow"),
        "{a:?}"
    );
    assert!(
        a[1].starts_with("echo: 🎙️ ") && a[1].contains("London tomorrow"),
        "{a:?}"
    );
    let b = to(222);
    assert!(
        b.iter()
            .any(|t| t.starts_with("echo: 🎙️") && t.contains("shopping list")),
        "{b:?}"
    );
    // Too long (refused before download) and truncated (refused after decoding).
    tg.voice(333, "V3", audio("s1.ogg"), 400);
    let mut truncated = audio("s5.ogg");
    truncated.truncate(truncated.len() / 3);
    tg.voice(444, "V4", truncated, 8);
    let sent = tg
        .wait_sent_up_to(4800, |s| {
            s.iter().any(|m| m.chat_id == 333) && s.iter().any(|m| m.chat_id == 444)
        })
        .await;
    let long = sent.iter().find(|m| m.chat_id == 333).unwrap();
    assert!(
        long.text.contains("too long (400 s; I take up to 60 s)"),
        "{}",
        long.text
    );
    let cut = sent.iter().find(|m| m.chat_id == 444).unwrap();
    assert!(!cut.text.is_empty());
    // Too big (refused from `file_size`, before any download) and silent.
    let downloads = tg.downloads();
    tg.voice_sized(666, "V6", audio("s2.ogg"), 4, 25_000_000);
    tg.voice(777, "V7", silent_wav(3), 3);
    let sent = tg
        .wait_sent_up_to(4800, |s| {
            s.iter().any(|m| m.chat_id == 666) && s.iter().any(|m| m.chat_id == 777)
        })
        .await;
    let big = sent.iter().find(|m| m.chat_id == 666).unwrap();
    assert!(
        big.text.contains("too large for me (25.0 MB"),
        "{}",
        big.text
    );
    let quiet = sent.iter().find(|m| m.chat_id == 777).unwrap();
    assert_eq!(
        quiet.text,
        "🎙️ I couldn't make out any speech in that voice note."
    );
    assert_eq!(
        tg.downloads(),
        downloads + 1,
        "only the silent note was fetched"
    );
    // Still serving text.
    tg.dm(555, "ping");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: ping"))
        .await;
    let _ = gw;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_model_is_named_once_per_chat_per_hour() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SECRET", apiUrl: "{}", dmPolicy: "open" }} }},
           voice: {{ model: "/nonexistent/ggml-base.en.bin" }},"#,
        tg.url
    );
    let _gw = TestGateway::start(&model, &extra).await;
    tg.voice(111, "V1", audio("s2.ogg"), 4);
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert!(
        sent[0].text.contains("switchboard models download base.en"),
        "{}",
        sent[0].text
    );
    tg.voice(111, "V2", audio("s3.ogg"), 4);
    let sent = tg.wait_sent(|s| s.len() == 2).await;
    assert!(
        !sent[1].text.contains("models download"),
        "told once: {}",
        sent[1].text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_discord_voice_message_is_fetched_from_the_cdn_echoed_and_answered() {
    use crate::support::fake_discord::FakeDiscord;
    let Some(model_path) = model() else { return };
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let extra = format!(
        r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "open" }} }},
           voice: {{ model: "{}", maxSeconds: 60 }},"#,
        d.api_url,
        model_path.display()
    );
    let _gw = TestGateway::start(&model, &extra).await;
    d.wait_until("the bot to identify", |d| d.connected()).await;
    let id = d.voice_message(500_030, None, 30, audio("s4.ogg"), 3.9);
    let sent = d.wait_sent_up_to(4800, |s| s.len() >= 2).await;
    assert_eq!(d.cdn_fetches(), 1);
    assert!(
        sent[0].content.starts_with("🎙️ ") && sent[0].content.contains("Alice"),
        "{sent:?}"
    );
    assert!(
        sent[1].content.starts_with("echo: 🎙️ ") && sent[1].content.contains("10 minutes late"),
        "{sent:?}"
    );
    assert_eq!(sent[1].reply_to, Some(id.to_string()));
    // Over the length limit: refused from the attachment's own duration, never downloaded.
    d.voice_message(500_031, None, 31, audio("s1.ogg"), 400.0);
    let sent = d
        .wait_sent(|s| s.iter().any(|m| m.channel == 500_031))
        .await;
    let long = sent.iter().find(|m| m.channel == 500_031).unwrap();
    assert!(long.content.contains("too long"), "{}", long.content);
    assert_eq!(d.cdn_fetches(), 1);
}

/// Audio people send besides voice notes: MP3, M4A/AAC, FLAC, WebM/Opus and Ogg/Vorbis (copies of
/// the shared samples in `tests/fixtures/audio/`), each decoded and transcribed.
#[tokio::test(flavor = "multi_thread")]
async fn transcribe_reads_mp3_m4a_flac_webm_and_vorbis() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json5");
    std::fs::write(
        &cfg,
        format!("{{ stateDir: \"{}\" }}", dir.path().display()),
    )
    .unwrap();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    for (file, words) in [
        ("s2.mp3", &["London tomorrow"][..]),
        ("s3.m4a", &["milk", "shopping list"]),
        ("s4.flac", &["Alice", "10 minutes late"]),
        ("s2.webm", &["London tomorrow"]),
        ("s3.vorbis.ogg", &["milk", "shopping list"]),
    ] {
        let (out, v) = transcribe_json(&cfg, &fixtures.join(file), &model).await;
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let text = v["text"].as_str().unwrap_or_default();
        for w in words {
            assert!(text.contains(w), "{file}: `{w}` not in {text:?}");
        }
        let secs = v["audio_secs"].as_f64().unwrap();
        assert!(secs > 3.0 && secs < 4.5, "{file}: {secs} s");
    }
}

/// `voice.model` by catalogue name: the model is fetched (from the test model host, checked
/// against `modelSha256`) when the first note needs it; the chat is told once, and the notes that
/// arrive meanwhile are all transcribed once it is there.
#[tokio::test(flavor = "multi_thread")]
async fn a_model_named_by_catalogue_name_is_fetched_on_first_need() {
    use crate::support::fake_model_host::FakeModelHost;
    use sha2::Digest;
    let Some(model_path) = model() else { return };
    let bytes = std::fs::read(&model_path).unwrap();
    let sha = format!("{:x}", sha2::Sha256::digest(&bytes));
    let host = FakeModelHost::start().await;
    host.put("ggml-tiny.en.bin", bytes);
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SECRET", apiUrl: "{}", dmPolicy: "open" }} }},
           voice: {{ model: "tiny.en", modelUrl: "{}", modelSha256: "{sha}" }},"#,
        tg.url, host.url
    );
    let gw = TestGateway::start(&model, &extra).await;
    assert!(
        host.log().is_empty(),
        "nothing is fetched before it is needed"
    );
    tg.voice(111, "V1", audio("s2.ogg"), 4);
    tg.voice(111, "V2", audio("s3.ogg"), 4);
    let sent = tg
        .wait_sent_up_to(4800, |s| {
            s.iter().filter(|m| m.text.starts_with("echo:")).count() == 2
        })
        .await;
    let texts: Vec<&str> = sent.iter().map(|m| m.text.as_str()).collect();
    let notices = texts
        .iter()
        .filter(|t| t.contains("Getting my speech model ready (tiny.en"))
        .count();
    assert_eq!(notices, 1, "told once: {texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("London tomorrow")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("shopping list")),
        "{texts:?}"
    );
    assert_eq!(host.log().len(), 1, "fetched once");
    assert!(gw.dir.path().join("state/models/ggml-tiny.en.bin").exists());
}

/// Music and noise are not speech: no invented words, a clear answer instead.
#[tokio::test(flavor = "multi_thread")]
async fn noise_and_music_get_no_speech_rather_than_invented_text() {
    let Some(model_path) = model() else { return };
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SECRET", apiUrl: "{}", dmPolicy: "open" }} }},
           voice: {{ model: "{}" }},"#,
        tg.url,
        model_path.display()
    );
    let _gw = TestGateway::start(&model, &extra).await;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    for (user, file) in [(111, "noise.ogg"), (222, "music.ogg")] {
        let bytes = std::fs::read(fixtures.join(file)).unwrap();
        tg.voice(user, file, bytes, 5);
    }
    let sent = tg.wait_sent_up_to(4800, |s| s.len() >= 2).await;
    for m in &sent {
        assert_eq!(
            m.text, "🎙️ I couldn't make out any speech in that voice note.",
            "{sent:?}"
        );
    }
    assert!(model.requests().is_empty(), "nothing reached the model");
}

/// `voice.language: "auto"`: whisper's detection, and the transcript says what it heard.
#[tokio::test(flavor = "multi_thread")]
async fn auto_language_says_which_language_was_heard() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json5");
    std::fs::write(
        &cfg,
        format!(
            "{{ stateDir: \"{}\", providers: {{ anthropic: {{ apiKey: \"x\" }} }},
               models: {{ default: \"anthropic/c\" }}, voice: {{ language: \"auto\" }} }}",
            dir.path().display()
        ),
    )
    .unwrap();
    let (out, v) = transcribe_json(&cfg, &shared().join("audio/s3.ogg"), &model).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(v["language"], "en", "{v}");
    assert!(v["text"].as_str().unwrap().contains("milk"), "{v}");
}
