//! Spoken replies (`voice.reply`, `tts`): a voice note is answered with text and a voice note
//! (Telegram `sendVoice`, a Discord voice message), the speech made by an OpenAI-compatible
//! `/audio/speech` server (the fake model's) or a local command, encoded by the gateway as
//! Ogg/Opus that our own decoder reads back at the right length. A failing engine costs the
//! voice note, never the text.

use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::voice::{audio, shared, whisper_model as model_path};
use crate::support::*;
use std::time::Duration;

/// Seconds of audio in an Ogg/Opus note, by our own decoder.
fn seconds(ogg: &[u8]) -> f32 {
    let pcm = switchboard::voice::decode::decode(ogg).expect("the voice note decodes");
    pcm.len() as f32 / switchboard::voice::decode::RATE as f32
}

async fn until(what: &str, pred: impl Fn() -> bool) {
    for _ in 0..800 {
        if pred() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn telegram(
    model: &FakeModel,
    voice: &str,
    tts: &str,
) -> Option<(FakeTelegram, TestGateway)> {
    let whisper = model_path()?;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(
        model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},
               voice: {{ model: "{}", {voice} }}, {tts}"#,
            tg.url,
            whisper.display()
        ),
    )
    .await;
    Some((tg, gw))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_voice_note_is_answered_with_text_and_a_voice_note() {
    let model = FakeModel::start().await;
    model.set_speech(audio("s2.wav"));
    let Some((tg, _gw)) = telegram(
        &model,
        r#"reply: "spoken""#,
        r#"tts: { provider: "openai", model: "tts-test", voice: "nova" },"#,
    )
    .await
    else {
        return;
    };
    tg.voice(111, "note1", audio("s3.ogg"), 4);
    until("the voice reply", || {
        tg.files_sent().iter().any(|f| f.method == "sendvoice")
    })
    .await;
    let texts: Vec<String> = tg.sent().iter().map(|m| m.text.clone()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("echo: 🎙️") && t.contains("milk")),
        "the text reply is there too: {texts:?}"
    );
    let voice = tg
        .files_sent()
        .into_iter()
        .find(|f| f.method == "sendvoice")
        .unwrap();
    assert_eq!(voice.chat_id, 111);
    assert_eq!(voice.upload.mime, "audio/ogg");
    let secs = seconds(&voice.upload.bytes);
    assert!(
        (secs - 3.53).abs() < 0.2,
        "the note is as long as the speech: {secs}"
    );
    let req = &model.speech_requests()[0];
    assert_eq!(req["model"], "tts-test");
    assert_eq!(req["voice"], "nova");
    assert_eq!(req["response_format"], "wav");
    assert!(
        req["input"].as_str().unwrap().starts_with("echo:"),
        "the reply was read: {req}"
    );
    // A typed message gets text only under "spoken".
    tg.dm(111, "typed");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: typed"))
        .await;
    tg.settle().await;
    assert_eq!(model.speech_requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_speech_engine_still_sends_the_text() {
    let model = FakeModel::start().await;
    model.fail_speech(500);
    let Some((tg, gw)) = telegram(
        &model,
        r#"reply: "always""#,
        r#"tts: { provider: "openai" },"#,
    )
    .await
    else {
        return;
    };
    tg.dm(111, "hello there");
    tg.wait_sent(|s| s.iter().any(|m| m.text == "echo: hello there"))
        .await;
    until("the speech request", || !model.speech_requests().is_empty()).await;
    tg.settle().await;
    assert!(tg.files_sent().is_empty(), "no voice note");
    assert!(
        gw.log().contains("no spoken reply"),
        "the failure is logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_command_speaks_every_reply_when_always() {
    let model = FakeModel::start().await;
    let wav = shared().join("audio/s4.wav");
    // A program that reads the text on stdin and writes WAV on stdout, as piper does.
    let cmd = format!(r#"["sh", "-c", "cat > /dev/null; cat {}"]"#, wav.display());
    let Some((tg, _gw)) = telegram(
        &model,
        r#"reply: "always""#,
        &format!("tts: {{ command: {cmd} }},"),
    )
    .await
    else {
        return;
    };
    tg.dm(111, "read me something");
    until("the voice reply", || {
        tg.files_sent().iter().any(|f| f.method == "sendvoice")
    })
    .await;
    let voice = tg.files_sent().pop().unwrap();
    let secs = seconds(&voice.upload.bytes);
    assert!((secs - 3.91).abs() < 0.2, "{secs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_discord_voice_message_is_answered_with_a_voice_message() {
    let Some(whisper) = model_path() else { return };
    let model = FakeModel::start().await;
    model.set_speech(audio("s1.wav"));
    let d = FakeDiscord::start().await;
    let _gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "open" }} }},
               voice: {{ model: "{}", reply: "spoken" }}, tts: {{ provider: "openai" }},"#,
            d.api_url,
            whisper.display()
        ),
    )
    .await;
    d.wait_until("the bot to identify", |d| {
        d.identifies() >= 1 && d.connected()
    })
    .await;
    d.voice_message(500_030, None, 30, audio("s2.ogg"), 3.5);
    until("the voice message", || {
        d.sent().iter().any(|m| m.flags == 8192)
    })
    .await;
    let sent = d.sent();
    assert!(
        sent.iter().any(|m| m.content.starts_with("echo: 🎙️")),
        "the text reply is there too: {sent:?}"
    );
    let v = sent.iter().find(|m| m.flags == 8192).unwrap();
    let meta = &v.attachments[0];
    assert_eq!(meta["filename"], "voice-message.ogg");
    let dur = meta["duration_secs"].as_f64().unwrap();
    assert!((dur - 4.16).abs() < 0.2, "{dur}");
    assert!(!meta["waveform"].as_str().unwrap().is_empty());
    let ogg = &v.attachment.as_ref().unwrap().bytes;
    assert!((seconds(ogg) - 4.16).abs() < 0.2);
}
