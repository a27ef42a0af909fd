//! Voice notes, transcribed locally with whisper (whisper-rs, whisper.cpp in-process).
//!
//! The model is loaded once, lazily, and shared; transcriptions run on blocking threads one at a
//! time (a queue, not a pile-up: each already uses `voice.threads` cores). The encoder context is
//! sized to the audio (whisper.cpp's `audio_ctx`), since whisper otherwise pads every note to 30 s
//! and a 4-second note would cost as much as a half-minute one.

pub mod decode;
mod formats;
pub mod models;

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("{0}")]
    Decode(#[from] decode::DecodeError),
    #[error("no speech model at {0} — run `switchboard models download base.en`")]
    NoModel(String),
    #[error(
        "the speech model at {path} could not be loaded ({reason}) — run `switchboard models download base.en`"
    )]
    BadModel { path: String, reason: String },
    #[error("transcription failed: {0}")]
    Whisper(String),
    #[error("the speech model {name} could not be fetched ({reason})")]
    Fetch { name: String, reason: String },
}

impl VoiceError {
    pub fn is_model_problem(&self) -> bool {
        matches!(
            self,
            Self::NoModel(_) | Self::BadModel { .. } | Self::Fetch { .. }
        )
    }
}

/// How a missing model named by catalogue name (`voice.model: "base.en"`) is fetched: checksummed
/// and resumable, as `switchboard models download` does.
pub struct Fetch {
    pub model: &'static models::Known,
    pub base_url: String,
    pub sha256: Option<String>,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub start_secs: f32,
    pub end_secs: f32,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
    pub audio_secs: f32,
    /// The language whisper heard, with `voice.language: "auto"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Encoder frames added to the audio's own (50 a second). With 64 the tiny model lost the first
/// words of an 8-second note; from 256 on, every sample reads as with the full 30-second window.
const CTX_HEADROOM: i32 = 256;

/// The encoder context for `secs` of audio: 50 frames a second plus headroom, at most whisper's
/// full 30-second window (1500).
pub fn audio_ctx(secs: f32) -> i32 {
    ((secs * 50.0).ceil() as i32 + CTX_HEADROOM).clamp(256, 1500)
}

pub struct Transcriber {
    model: PathBuf,
    language: String,
    threads: i32,
    context: OnceLock<Result<Arc<WhisperContext>, String>>,
    slots: Semaphore,
    fetch: Option<Fetch>,
    /// Held while the model is fetched: notes that arrive meanwhile wait for it, then find it.
    fetching: tokio::sync::Mutex<()>,
}

impl Transcriber {
    pub fn new(model: &Path, language: &str, threads: u16) -> Transcriber {
        Transcriber {
            model: model.to_path_buf(),
            language: language.to_string(),
            threads: threads.max(1) as i32,
            context: OnceLock::new(),
            slots: Semaphore::new(1),
            fetch: None,
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Fetches the model on first need when it is missing.
    pub fn with_fetch(mut self, fetch: Fetch) -> Self {
        self.fetch = Some(fetch);
        self
    }

    /// The model that must be fetched before a note can be transcribed (name and size), if any.
    pub fn to_fetch(&self) -> Option<(&'static str, u64)> {
        match &self.fetch {
            Some(f) if !self.model.exists() => Some((f.model.name, f.model.bytes)),
            _ => None,
        }
    }

    /// Makes sure the model is there, fetching it when it is named and missing; one fetch at a
    /// time, and every note waiting meanwhile then finds the file. A failed fetch is tried again
    /// by the next note.
    pub async fn ensure_model(&self) -> Result<(), VoiceError> {
        if self.model.exists() {
            return Ok(());
        }
        let Some(f) = &self.fetch else {
            return Err(VoiceError::NoModel(self.model.display().to_string()));
        };
        let _one = self.fetching.lock().await;
        if self.model.exists() {
            return Ok(());
        }
        tracing::info!(model = f.model.name, "fetching the speech model");
        models::download(&models::Request {
            model: f.model,
            base_url: &f.base_url,
            dir: &f.dir,
            sha256: f.sha256.as_deref(),
        })
        .await
        .map_err(|e| VoiceError::Fetch {
            name: f.model.name.to_string(),
            reason: e.to_string(),
        })?;
        tracing::info!(model = f.model.name, "speech model ready");
        Ok(())
    }

    /// The loaded model (loading it on first use).
    fn context(&self) -> Result<Arc<WhisperContext>, VoiceError> {
        if !self.model.exists() {
            return Err(VoiceError::NoModel(self.model.display().to_string()));
        }
        let loaded = self.context.get_or_init(|| {
            whisper_rs::install_logging_hooks();
            let path = self.model.to_string_lossy().into_owned();
            WhisperContext::new_with_params(&path, WhisperContextParameters::default())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        loaded.clone().map_err(|reason| VoiceError::BadModel {
            path: self.model.display().to_string(),
            reason,
        })
    }

    /// Transcribes 16 kHz mono samples, waiting for its turn.
    pub async fn transcribe(self: &Arc<Self>, samples: Vec<f32>) -> Result<Transcript, VoiceError> {
        self.ensure_model().await?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| VoiceError::Whisper(e.to_string()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.transcribe_blocking(&samples))
            .await
            .map_err(|e| VoiceError::Whisper(e.to_string()))?
    }

    pub fn transcribe_blocking(&self, samples: &[f32]) -> Result<Transcript, VoiceError> {
        let audio_secs = samples.len() as f32 / decode::RATE as f32;
        // Whisper invents words for silence ("you", "Thank you."), so silence never reaches it.
        if is_silent(samples) {
            return Ok(Transcript {
                text: String::new(),
                segments: Vec::new(),
                audio_secs,
                language: None,
            });
        }
        let ctx = self.context()?;
        let mut state = ctx
            .create_state()
            .map_err(|e| VoiceError::Whisper(e.to_string()))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads);
        let auto = self.language == "auto";
        params.set_language(Some(&self.language));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_no_context(true);
        params.set_audio_ctx(audio_ctx(audio_secs));
        // Pad short notes with a little silence: whisper needs at least a second.
        let mut input = samples.to_vec();
        if input.len() < decode::RATE + decode::RATE / 2 {
            input.resize(decode::RATE + decode::RATE / 2, 0.0);
        }
        state
            .full(params, &input)
            .map_err(|e| VoiceError::Whisper(e.to_string()))?;
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let text = seg
                .to_str_lossy()
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            let tokens: Vec<f32> = (0..seg.n_tokens())
                .filter_map(|i| seg.get_token(i).map(|t| t.token_probability()))
                .collect();
            let confidence = if tokens.is_empty() {
                1.0
            } else {
                tokens.iter().sum::<f32>() / tokens.len() as f32
            };
            if text.is_empty()
                || is_non_speech(&text)
                || invented(&text, seg.no_speech_probability(), confidence)
            {
                tracing::debug!(%text, no_speech = seg.no_speech_probability(), confidence, "dropped a segment");
                continue;
            }
            segments.push(Segment {
                start_secs: seg.start_timestamp() as f32 / 100.0,
                end_secs: seg.end_timestamp() as f32 / 100.0,
                text,
            });
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        // An English-only model hears English whatever it is asked to detect.
        let language = auto
            .then(|| match ctx.is_multilingual() {
                true => whisper_rs::get_lang_str(state.full_lang_id_from_state()),
                false => Some("en"),
            })
            .flatten()
            .map(str::to_string);
        Ok(Transcript {
            text,
            segments,
            audio_secs,
            language,
        })
    }
}

/// Loudest 20 ms frame below this RMS (-50 dBFS) means nobody spoke: a phone's noise floor sits
/// around -60 dBFS, quiet speech well above -40.
const SILENCE_RMS: f32 = 0.003_16;

fn is_silent(samples: &[f32]) -> bool {
    let frame = decode::RATE / 50;
    !samples.chunks(frame).any(|c| {
        let energy: f32 = c.iter().map(|x| x * x).sum();
        (energy / c.len() as f32).sqrt() >= SILENCE_RMS
    })
}

/// What whisper writes on music and noise when it invents: the closing lines of the videos it
/// was trained on, and filler (compared without case and punctuation).
const HALLUCINATIONS: &[&str] = &[
    "you",
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "thank you so much for watching",
    "thank you very much",
    "please subscribe",
    "subscribe to my channel",
    "like and subscribe",
    "see you next time",
    "see you in the next video",
    "bye",
    "so",
    "the end",
    "subtitles by the amara org community",
];

/// Whether a segment is likely invented rather than heard: whisper itself thinks there was no
/// speech, or it is a known non-speech phrase said without confidence, or only music notes.
fn invented(text: &str, no_speech: f32, confidence: f32) -> bool {
    let words: String = text
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return true; // "♪ ♪", "...": nothing a person said
    }
    if no_speech > 0.8 || (no_speech > 0.6 && confidence < 0.5) {
        return true;
    }
    HALLUCINATIONS.contains(&words.as_str()) && (no_speech > 0.3 || confidence < 0.6)
}

/// whisper's markers for silence and noise: "[BLANK_AUDIO]", "(silence)", "[Music]".
fn is_non_speech(s: &str) -> bool {
    let t = s.trim();
    (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('(') && t.ends_with(')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_phrases_and_music_are_dropped_but_confident_speech_is_kept() {
        assert!(invented("♪ ♪ ♪", 0.1, 0.9));
        assert!(invented("...", 0.0, 0.9));
        assert!(invented("Thank you for watching!", 0.4, 0.9));
        assert!(invented("you", 0.1, 0.3));
        assert!(invented("Call the bank at nine.", 0.9, 0.9));
        assert!(
            !invented("Thank you.", 0.05, 0.9),
            "a clear thank-you is speech"
        );
        assert!(!invented("Call the bank at nine.", 0.1, 0.8));
        assert!(!invented("Call the bank at nine.", 0.7, 0.7));
    }

    #[test]
    fn silence_and_a_noise_floor_are_silent_and_a_tone_is_not() {
        assert!(is_silent(&[]));
        assert!(is_silent(&vec![0.0; 48_000]));
        let hiss: Vec<f32> = (0..48_000)
            .map(|i| if i % 2 == 0 { 0.001 } else { -0.001 })
            .collect();
        assert!(is_silent(&hiss));
        let mut speechy = hiss.clone();
        for (i, s) in speechy[16_000..16_800].iter_mut().enumerate() {
            *s = 0.05 * (i as f32 * 0.1).sin();
        }
        assert!(!is_silent(&speechy));
    }
}
