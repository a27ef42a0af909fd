//! Audio files → 16 kHz mono f32, the input whisper wants. In Rust, no system packages:
//! Ogg/Opus (Telegram voice notes, Discord voice messages) through `ogg` + `opus-rs`, decoding
//! straight to 16 kHz and honouring the header's pre-skip and output gain and the stream's end
//! trimming; WAV at any rate through `hound`, resampled with `rubato`; MP3, M4A/AAC, FLAC,
//! Ogg/Vorbis and WebM through `symphonia` (see `formats`).
//!
//! Decoders run on untrusted input: a panic inside one is caught and becomes an error.

use std::io::Cursor;

pub const RATE: usize = 16_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "this is not an audio format I can read (Ogg/Opus, WAV, MP3, M4A/AAC, FLAC, Ogg/Vorbis and WebM work)"
    )]
    Unsupported,
    #[error("the audio file is damaged: {0}")]
    Corrupt(String),
}

/// Decodes `bytes` (the format is sniffed from its header) to 16 kHz mono samples.
pub fn decode(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    let result = std::panic::catch_unwind(|| match native(bytes) {
        Err(DecodeError::Unsupported) => super::formats::decode(bytes),
        other => other,
    });
    result.unwrap_or_else(|_| Err(DecodeError::Corrupt("the decoder failed".into())))
}

/// Our own decoders only: Ogg/Opus (voice notes) and WAV; anything else is `Unsupported`. What
/// the `decode` fuzz target drives: under libFuzzer a panic aborts, and symphonia (fuzzed by its
/// own project) is kept out of our target, behind `decode`'s `catch_unwind` in the gateway.
pub fn native(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    if bytes.starts_with(b"OggS") && is_opus_ogg(bytes) {
        decode_ogg_opus(bytes)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        decode_wav(bytes)
    } else {
        Err(DecodeError::Unsupported)
    }
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt(e.to_string())
}

/// Whether an Ogg stream carries Opus (its first packet, at byte 28 of the first page, is the
/// `OpusHead`); Vorbis and others go to symphonia. A damaged start counts as Opus, so it is
/// reported as a damaged voice note.
fn is_opus_ogg(bytes: &[u8]) -> bool {
    match bytes.get(28..36) {
        Some(head) => !(head.starts_with(b"\x01vorbis") || head.starts_with(b"\x7fFLAC")),
        None => true,
    }
}

fn decode_ogg_opus(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    let mut reader = ogg::reading::PacketReader::new(Cursor::new(bytes));
    let head = reader
        .read_packet()
        .map_err(corrupt)?
        .ok_or_else(|| corrupt("empty stream"))?;
    if !head.data.starts_with(b"OpusHead") || head.data.len() < 19 {
        return Err(DecodeError::Unsupported);
    }
    let channels = head.data[9].max(1) as usize;
    let pre_skip_48k = u16::from_le_bytes([head.data[10], head.data[11]]) as u64;
    let gain_q78 = i16::from_le_bytes([head.data[16], head.data[17]]);
    if channels > 2 {
        return Err(corrupt("multichannel Opus is not supported"));
    }
    // Comment header (OpusTags): skip.
    reader.read_packet().map_err(corrupt)?;
    let mut decoder = opus_rs::OpusDecoder::new(RATE as i32, channels).map_err(corrupt)?;
    // 120 ms is the longest Opus packet.
    let max_frame = RATE * 120 / 1000;
    let mut pcm = vec![0f32; max_frame * channels];
    let mut out: Vec<f32> = Vec::new();
    let mut last_granule_48k: Option<u64> = None;
    while let Some(packet) = reader.read_packet().map_err(corrupt)? {
        let n = decoder
            .decode(&packet.data, max_frame, &mut pcm)
            .map_err(corrupt)?;
        for frame in pcm[..n * channels].chunks(channels) {
            out.push(frame.iter().sum::<f32>() / channels as f32);
        }
        if packet.last_in_page() || packet.last_in_stream() {
            last_granule_48k = Some(packet.absgp_page());
        }
    }
    let to16k = |s48: u64| (s48 as usize * RATE) / 48_000;
    // End trimming: the final granule position says how many samples are real.
    if let Some(g) = last_granule_48k {
        let total = to16k(g.saturating_sub(0));
        out.truncate(total.min(out.len()));
    }
    let skip = to16k(pre_skip_48k).min(out.len());
    out.drain(..skip);
    if gain_q78 != 0 {
        let gain = 10f32.powf(gain_q78 as f32 / (20.0 * 256.0));
        out.iter_mut().for_each(|s| *s *= gain);
    }
    Ok(out)
}

fn decode_wav(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    let (mono, rate) = wav_mono(bytes)?;
    resample(mono, rate)
}

/// A WAV file's samples, mixed down to mono (±1.0), and its rate. Shared with the speech side,
/// which reads the WAV its engine writes.
pub(crate) fn wav_mono(bytes: &[u8]) -> Result<(Vec<f32>, usize), DecodeError> {
    let mut r = hound::WavReader::new(Cursor::new(bytes)).map_err(corrupt)?;
    let spec = r.spec();
    let channels = spec.channels.max(1) as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(corrupt)?
        }
    };
    let mono = samples
        .chunks(channels)
        .map(|f| f.iter().sum::<f32>() / f.len() as f32)
        .collect();
    Ok((mono, spec.sample_rate as usize))
}

/// Resamples mono audio to 16 kHz (rubato's FFT resampler), trimming its delay.
pub(crate) fn resample(input: Vec<f32>, rate: usize) -> Result<Vec<f32>, DecodeError> {
    resample_to(input, rate, RATE)
}

/// Resamples mono audio from `rate` to `to`.
pub(crate) fn resample_to(
    input: Vec<f32>,
    rate: usize,
    to: usize,
) -> Result<Vec<f32>, DecodeError> {
    use rubato::{FftFixedIn, Resampler};
    if rate == to || input.is_empty() {
        return Ok(input);
    }
    if rate == 0 || to == 0 {
        return Err(corrupt("sample rate 0"));
    }
    let mut r = FftFixedIn::<f32>::new(rate, to, 1024, 2, 1).map_err(corrupt)?;
    let delay = r.output_delay();
    let expected = input.len() * to / rate;
    let mut out = Vec::with_capacity(expected + delay + 1024);
    let mut pos = 0;
    while pos + r.input_frames_next() <= input.len() {
        let n = r.input_frames_next();
        let chunk = r.process(&[&input[pos..pos + n]], None).map_err(corrupt)?;
        out.extend_from_slice(&chunk[0]);
        pos += n;
    }
    if pos < input.len() {
        let chunk = r
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(corrupt)?;
        out.extend_from_slice(&chunk[0]);
    }
    let tail = r.process_partial::<&[f32]>(None, None).map_err(corrupt)?;
    out.extend_from_slice(&tail[0]);
    let end = (delay + expected).min(out.len());
    Ok(out[delay.min(end)..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(decode(b"hello world"), Err(DecodeError::Unsupported));
        assert!(matches!(
            decode(b"OggS\0\0garbage"),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(decode(b"RIFF\0\0\0\0WAVEfmt ").is_err());
    }

    #[test]
    fn resampling_keeps_duration() {
        let one_second_44k: Vec<f32> = (0..44_100).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let out = resample(one_second_44k, 44_100).unwrap();
        assert!((out.len() as i64 - 16_000).abs() <= 2, "{}", out.len());
    }

    /// Real voice notes cut short at many points and with bytes flipped: every variant decodes or
    /// is refused with an error; none panics, hangs or allocates without bound. (The fuzz target
    /// `decode` explores the same space further.)
    #[test]
    fn truncated_and_corrupted_notes_never_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/audio");
        let mut checked = 0;
        for name in ["s1.ogg", "s1.wav"] {
            // The shared samples are beside the repository here and in CI.
            let bytes = std::fs::read(dir.join(name)).expect("shared audio sample");
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            for cut in (0..bytes.len()).step_by((bytes.len() / 40).max(1)) {
                let _ = decode(&bytes[..cut]);
                checked += 1;
            }
            for _ in 0..60 {
                let mut b = bytes.clone();
                for _ in 0..1 + next() % 8 {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                let _ = decode(&b);
                checked += 1;
            }
        }
        assert!(checked >= 200, "{checked}");
    }
}
