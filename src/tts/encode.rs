//! Speech audio → an Ogg/Opus voice note, in process (`opus-rs` to encode, `ogg` to write the
//! pages; no ffmpeg): mono, 32 kbit/s, 20 ms frames, the shape Telegram and Discord play as a
//! voice note. Also the note's duration and the waveform Discord shows.

use crate::voice::decode::resample_to;

/// Rates Opus encodes at directly; anything else is resampled to 48 kHz first.
const OPUS_RATES: [usize; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// The decoder's pre-skip we announce (the encoder's look-ahead, at 48 kHz).
const PRE_SKIP: u16 = 312;
const BITRATE: i32 = 32_000;
const COMPLEXITY: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the speech audio is not WAV: {0}")]
    Wav(String),
    #[error("the speech audio is empty")]
    Empty,
    #[error("cannot encode the voice note: {0}")]
    Opus(String),
}

/// A voice note ready to post.
#[derive(Debug, Clone)]
pub struct Note {
    pub ogg: Vec<u8>,
    pub duration_secs: f32,
    /// 256 amplitudes 0–255 over the note (Discord's `waveform`, before base64).
    pub waveform: Vec<u8>,
}

/// Mono samples (±1.0) at `rate` from a WAV file (what TTS engines write).
pub fn read_wav(bytes: &[u8]) -> Result<(Vec<f32>, usize), EncodeError> {
    crate::voice::decode::wav_mono(bytes).map_err(|e| EncodeError::Wav(e.to_string()))
}

/// Encodes mono `samples` at `rate` as an Ogg/Opus voice note.
pub fn encode(samples: &[f32], rate: usize) -> Result<Note, EncodeError> {
    if samples.is_empty() || rate == 0 {
        return Err(EncodeError::Empty);
    }
    let duration_secs = samples.len() as f32 / rate as f32;
    let (pcm, rate) = if OPUS_RATES.contains(&rate) {
        (std::borrow::Cow::Borrowed(samples), rate)
    } else {
        let r = resample_to(samples.to_vec(), rate, 48_000)
            .map_err(|e| EncodeError::Opus(e.to_string()))?;
        (std::borrow::Cow::Owned(r), 48_000)
    };
    let mut enc = opus_rs::OpusEncoder::new(rate as i32, 1, opus_rs::Application::Voip)
        .map_err(|e| EncodeError::Opus(e.to_string()))?;
    enc.bitrate_bps = BITRATE;
    // Speech at 32 kbit/s sounds the same at a lower complexity, for a fraction of the CPU
    // (the default, 9, spent ~380 ms on 30 s of audio here).
    enc.complexity = COMPLEXITY;
    let frame = rate / 50;
    let per_frame_48k = 960u64;
    let serial = 0x5357_4254; // "SWBT"
    let mut w = ogg::writing::PacketWriter::new(Vec::with_capacity(pcm.len() / 8));
    use ogg::writing::PacketWriteEndInfo::{EndPage, EndStream, NormalPacket};
    let io = |e: std::io::Error| EncodeError::Opus(e.to_string());
    w.write_packet(opus_head(rate as u32), serial, EndPage, 0)
        .map_err(io)?;
    w.write_packet(opus_tags(), serial, EndPage, 0)
        .map_err(io)?;
    let frames = pcm.len().div_ceil(frame);
    let total_48k = (pcm.len() as u64 * 48_000) / rate as u64;
    let mut buf = vec![0u8; 1500];
    let mut padded = vec![0f32; frame];
    for i in 0..frames {
        let start = i * frame;
        let end = (start + frame).min(pcm.len());
        let input: &[f32] = if end - start == frame {
            &pcm[start..end]
        } else {
            padded.fill(0.0);
            padded[..end - start].copy_from_slice(&pcm[start..end]);
            &padded
        };
        let n = enc
            .encode(input, frame, &mut buf)
            .map_err(|e| EncodeError::Opus(e.to_string()))?;
        let last = i + 1 == frames;
        let granule = if last {
            PRE_SKIP as u64 + total_48k
        } else {
            PRE_SKIP as u64 + (i as u64 + 1) * per_frame_48k
        };
        // A page about every second keeps seeking cheap and pages small.
        let info = if last {
            EndStream
        } else if (i + 1) % 50 == 0 {
            EndPage
        } else {
            NormalPacket
        };
        w.write_packet(buf[..n].to_vec(), serial, info, granule)
            .map_err(io)?;
    }
    Ok(Note {
        ogg: w.into_inner(),
        duration_secs,
        waveform: waveform(samples),
    })
}

fn opus_head(input_rate: u32) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1); // version
    h.push(1); // channels
    h.extend(PRE_SKIP.to_le_bytes());
    h.extend(input_rate.to_le_bytes());
    h.extend(0i16.to_le_bytes()); // output gain
    h.push(0); // mapping family: mono/stereo
    h
}

fn opus_tags() -> Vec<u8> {
    let vendor = b"switchboard";
    let mut t = b"OpusTags".to_vec();
    t.extend((vendor.len() as u32).to_le_bytes());
    t.extend(vendor);
    t.extend(0u32.to_le_bytes()); // no comments
    t
}

/// 256 loudness values (RMS per window, scaled to the loudest) for the waveform display.
fn waveform(samples: &[f32]) -> Vec<u8> {
    let n = 256.min(samples.len().max(1));
    let rms: Vec<f32> = (0..n)
        .map(|k| {
            let w = &samples[k * samples.len() / n..((k + 1) * samples.len() / n).max(k + 1)];
            (w.iter().map(|s| s * s).sum::<f32>() / w.len().max(1) as f32).sqrt()
        })
        .collect();
    let peak = rms.iter().cloned().fold(0f32, f32::max).max(1e-6);
    rms.iter()
        .map(|r| ((r / peak) * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_decodes_back_to_the_same_length() {
        // Two seconds of a tone at 24 kHz (OpenAI's WAV rate) and at 22,050 Hz (piper's).
        for rate in [24_000usize, 22_050] {
            let samples: Vec<f32> = (0..rate * 2)
                .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.4)
                .collect();
            let note = encode(&samples, rate).unwrap();
            assert!((note.duration_secs - 2.0).abs() < 0.01);
            assert_eq!(note.waveform.len(), 256);
            let back = crate::voice::decode::decode(&note.ogg).unwrap();
            let secs = back.len() as f32 / crate::voice::decode::RATE as f32;
            assert!((secs - 2.0).abs() < 0.05, "{rate}: {secs} s");
            let energy = back.iter().map(|s| s * s).sum::<f32>() / back.len() as f32;
            assert!(energy > 0.01, "the tone survives: {energy}");
        }
        assert!(encode(&[], 24_000).is_err());
    }
}
