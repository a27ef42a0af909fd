//! Speech benchmark (prints figures; asserts nothing about time):
//!
//! - the spoken-reply pipeline on our side of the speech engine, for a reply about 30 s long:
//!   Markdown → speakable text → pieces, then the engine's WAV → Ogg/Opus (encode, duration,
//!   waveform). The engine itself (an API or piper) is not ours and not timed;
//! - decode time and peak RSS for 60 s of MP3 and of M4A/AAC (symphonia), beside Ogg/Opus.
//!
//! Run: `cargo bench --bench speech`.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard::tts::{encode, speakable};
use switchboard::voice::decode;

fn hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap_or_default()
}

/// A WAV of `secs` seconds: the shared sample `s5` (16 kHz) repeated.
fn wav_of(secs: usize, s5: &[u8]) -> Vec<u8> {
    let (samples, rate) = encode::read_wav(s5).expect("s5.wav");
    let mut out = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut out, spec).expect("wav");
    for s in samples.iter().cycle().take(secs * rate) {
        w.write_sample((s * 32767.0) as i16).expect("sample");
    }
    w.finalize().expect("wav");
    out.into_inner()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let s5 = std::fs::read(root.join("../shared/audio/s5.wav")).expect("shared audio");
    // About 75 words a 30 s reply, with the Markdown a model writes.
    let reply = "## Today\n\nGood morning! Here is **your day**: a call with the bank at nine, \
        then the [team sync](https://example.com/sync) at eleven.\n\n- Buy milk, eggs and bread\n\
        - Reply to Alice about the offsite\n- Book the dentist\n\n```\nnot read aloud\n```\n\
        The weather in London is mild, around fourteen degrees, with rain after four, so take \
        an umbrella. Your next free hour is at two; I kept it clear for the report. \
        See https://www.bbc.co.uk/weather for the details.";
    let prep = best_of(20, || {
        let t0 = Instant::now();
        let text = speakable::speakable(reply);
        let _ = speakable::pieces(&text, speakable::PIECE_CHARS);
        t0.elapsed()
    });
    let wav = wav_of(30, &s5);
    let enc = best_of(5, || {
        let t0 = Instant::now();
        let (samples, rate) = encode::read_wav(&wav).expect("wav");
        let _ = encode::encode(&samples, rate).expect("encode");
        t0.elapsed()
    });
    let (samples, rate) = encode::read_wav(&wav).expect("wav");
    let note = encode::encode(&samples, rate).expect("encode");
    // The usual engine rate (OpenAI answers 24 kHz WAV): resampling not needed, encode only.
    println!(
        "spoken reply, our side of the engine: text prep {:.2} ms + WAV → Ogg/Opus for 30 s of audio {:.1} ms = {:.1} ms ({} bytes, {:.1} s, {} waveform values)",
        prep.as_secs_f64() * 1e3,
        enc.as_secs_f64() * 1e3,
        (prep + enc).as_secs_f64() * 1e3,
        note.ogg.len(),
        note.duration_secs,
        note.waveform.len()
    );
    let fixtures = root.join("tests/fixtures/audio");
    for file in ["long60.mp3", "long60.m4a"] {
        let bytes = std::fs::read(fixtures.join(file)).expect("fixture");
        let before = hwm_mib();
        let took = best_of(3, || {
            let t0 = Instant::now();
            let _ = decode::decode(&bytes).expect("decodes");
            t0.elapsed()
        });
        let secs = decode::decode(&bytes).map(|s| s.len()).unwrap_or(0) as f64 / 16_000.0;
        println!(
            "{file}: {secs:.1} s of audio decoded to 16 kHz mono in {:.1} ms; peak RSS {:.1} MiB (+{:.1} MiB)",
            took.as_secs_f64() * 1e3,
            hwm_mib(),
            hwm_mib() - before
        );
    }
}
