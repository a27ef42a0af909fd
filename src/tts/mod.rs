//! Spoken replies (`voice.reply`, `tts`): a reply made speakable, read by a speech engine, and
//! encoded in process as Ogg/Opus voice notes.
//!
//! - `speakable`: Markdown → sentences to read, cut into pieces an engine takes.
//! - `encode`: WAV → Ogg/Opus (`opus-rs`, `ogg`), with duration and waveform.
//! - Engines: an OpenAI-compatible `/audio/speech` API (`tts.provider`, any `baseUrl`, so local
//!   servers that speak it work), or a local command that reads text on stdin and writes WAV on
//!   stdout (piper, espeak-ng).
//!
//! Nothing here can lose a reply: the text is posted before speech is made, and a failure here
//! is logged and the note skipped.

pub mod encode;
pub mod speakable;

use crate::config::Config;
pub use encode::Note;
use std::time::Duration;

/// The longest single voice note; longer replies come as several, in order.
pub const MAX_NOTE_SECS: f32 = 300.0;
/// The most WAV one engine call may return (about 9 minutes of 24 kHz 16-bit mono).
const MAX_WAV_BYTES: usize = 25 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("the speech engine failed: {0}")]
    Engine(String),
    #[error(transparent)]
    Encode(#[from] encode::EncodeError),
    #[error("nothing to say")]
    Empty,
}

enum Engine {
    OpenAi {
        url: String,
        key: Option<String>,
        model: String,
        voice: String,
    },
    Command(Vec<String>),
}

/// Turns reply text into voice notes.
pub struct Speaker {
    engine: Engine,
    http: reqwest::Client,
    timeout: Duration,
}

impl Speaker {
    /// The speaker `tts` configures; `None` without one.
    pub fn from_config(config: &Config) -> Option<Speaker> {
        let t = config.tts.as_ref()?;
        let engine = match (&t.command, &t.provider) {
            (Some(cmd), _) if !cmd.is_empty() => Engine::Command(cmd.clone()),
            (_, Some(p)) => {
                let provider = config.providers.get(p);
                let base = t
                    .base_url
                    .clone()
                    .or_else(|| provider.and_then(|p| p.base_url.clone()))
                    .unwrap_or_else(|| "https://api.openai.com/v1".into());
                Engine::OpenAi {
                    url: format!("{}/audio/speech", base.trim_end_matches('/')),
                    key: t
                        .api_key
                        .clone()
                        .or_else(|| provider.and_then(|p| p.api_key.clone()))
                        .filter(|k| !k.is_empty()),
                    model: t.model.clone(),
                    voice: t.voice.clone(),
                }
            }
            _ => return None,
        };
        Some(Speaker {
            engine,
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            timeout: Duration::from_secs(t.timeout_seconds.max(1)),
        })
    }

    /// `markdown` read aloud, as one voice note or (past [`MAX_NOTE_SECS`]) several in order.
    pub async fn speak(&self, markdown: &str) -> Result<Vec<Note>, TtsError> {
        let text = speakable::speakable(markdown);
        let pieces = speakable::pieces(&text, speakable::PIECE_CHARS);
        if pieces.is_empty() {
            return Err(TtsError::Empty);
        }
        let mut wavs = Vec::with_capacity(pieces.len());
        for p in &pieces {
            wavs.push(self.synthesize(p).await?);
        }
        tokio::task::spawn_blocking(move || notes(&wavs))
            .await
            .map_err(|e| TtsError::Engine(format!("encoding failed: {e}")))?
    }

    /// One piece of text → WAV bytes.
    async fn synthesize(&self, text: &str) -> Result<Vec<u8>, TtsError> {
        match &self.engine {
            Engine::OpenAi {
                url,
                key,
                model,
                voice,
            } => {
                let mut req = self
                    .http
                    .post(url)
                    .timeout(self.timeout)
                    .json(&serde_json::json!({
                        "model": model, "voice": voice, "input": text, "response_format": "wav"
                    }));
                if let Some(k) = key {
                    req = req.bearer_auth(k);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| TtsError::Engine(e.without_url().to_string()))?;
                let status = resp.status();
                if !status.is_success() {
                    let body: String = resp
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect();
                    return Err(TtsError::Engine(format!("{status}: {body}")));
                }
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| TtsError::Engine(e.without_url().to_string()))?;
                if bytes.len() > MAX_WAV_BYTES {
                    return Err(TtsError::Engine("the speech audio is too large".into()));
                }
                Ok(bytes.to_vec())
            }
            Engine::Command(cmd) => run_command(cmd, text, self.timeout).await,
        }
    }
}

/// Runs `cmd` with `text` on stdin; its stdout is the WAV.
async fn run_command(cmd: &[String], text: &str, timeout: Duration) -> Result<Vec<u8>, TtsError> {
    use tokio::io::AsyncWriteExt;
    let (program, args) = cmd
        .split_first()
        .ok_or_else(|| TtsError::Engine("tts.command is empty".into()))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TtsError::Engine(format!("cannot run `{program}`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let text = text.to_string();
        // Written beside the read, so a program that answers as it reads cannot block us.
        tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
        });
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| TtsError::Engine(format!("`{program}` took longer than {timeout:?}")))?
        .map_err(|e| TtsError::Engine(format!("`{program}`: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(TtsError::Engine(format!(
            "`{program}` failed ({}): {last}",
            out.status
        )));
    }
    if out.stdout.len() > MAX_WAV_BYTES {
        return Err(TtsError::Engine("the speech audio is too large".into()));
    }
    Ok(out.stdout)
}

/// WAV pieces joined (a short pause between) and encoded as notes of at most [`MAX_NOTE_SECS`].
fn notes(wavs: &[Vec<u8>]) -> Result<Vec<Note>, TtsError> {
    let mut all: Vec<f32> = Vec::new();
    let mut rate = 0usize;
    for w in wavs {
        let (samples, r) = encode::read_wav(w)?;
        let samples = if rate == 0 || r == rate {
            rate = r;
            samples
        } else {
            crate::voice::decode::resample_to(samples, r, rate)
                .map_err(|e| TtsError::Engine(e.to_string()))?
        };
        if !all.is_empty() {
            all.extend(std::iter::repeat_n(0.0, rate / 4));
        }
        all.extend(samples);
    }
    if all.is_empty() || rate == 0 {
        return Err(TtsError::Empty);
    }
    let per_note = (MAX_NOTE_SECS as usize) * rate;
    all.chunks(per_note)
        .map(|c| encode::encode(c, rate).map_err(TtsError::from))
        .collect()
}
