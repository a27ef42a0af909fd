//! What the voice tests share: the spoken samples and whisper model in `../shared/`, and a
//! `transcribe` run of the CLI.

use std::path::{Path, PathBuf};

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// The whisper model (`../shared/models/ggml-tiny.en.bin`, or `SWITCHBOARD_TEST_WHISPER_MODEL`).
/// Without one, voice tests skip with a reason — except under `CI=true`, where that fails.
pub fn whisper_model() -> Option<PathBuf> {
    let p = std::env::var_os("SWITCHBOARD_TEST_WHISPER_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("models/ggml-tiny.en.bin"));
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "whisper model missing at {} (required under CI=true)",
            p.display()
        );
    }
    eprintln!("skipping: no whisper model at {}", p.display());
    None
}

/// A shared spoken sample (`s1.ogg`, `s2.wav`…).
pub fn audio(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("audio").join(name)).expect("shared audio sample")
}

/// `switchboard transcribe FILE --model MODEL --json` under config `cfg`: its output, and the
/// JSON it printed (`Null` when it failed).
pub async fn transcribe_json(
    cfg: &Path,
    file: &Path,
    model: &Path,
) -> (std::process::Output, serde_json::Value) {
    let out = super::gateway::run_cli(
        cfg,
        &[
            "transcribe",
            file.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--json",
        ],
        "",
    )
    .await;
    let v = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out, v)
}
