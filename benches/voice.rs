//! Voice benchmark (prints figures): decode and transcription time, real-time factor on 2
//! threads, model load time and peak RSS, for each shared sample and a 60-second note; and our
//! overhead over calling whisper.cpp's `whisper_full` directly (through whisper-rs, same model,
//! same parameters, same audio) — the raw baseline.
//!
//! Run: `cargo bench --bench voice` (needs ../shared/models/ggml-tiny.en.bin).

use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard::voice::{Transcriber, audio_ctx, decode};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

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

/// whisper.cpp alone: one `whisper_full` on a fresh state with the parameters `Transcriber` uses.
fn raw(ctx: &WhisperContext, samples: &[f32]) -> Duration {
    let secs = samples.len() as f32 / 16_000.0;
    let mut input = samples.to_vec();
    input.resize(input.len().max(24_000), 0.0);
    let t0 = Instant::now();
    let mut state = ctx.create_state().expect("state");
    let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    p.set_n_threads(2);
    p.set_language(Some("en"));
    p.set_print_progress(false);
    p.set_print_realtime(false);
    p.set_print_special(false);
    p.set_print_timestamps(false);
    p.set_no_context(true);
    p.set_audio_ctx(audio_ctx(secs));
    state.full(p, &input).expect("full");
    for seg in state.as_iter() {
        let _ = seg.to_str_lossy();
    }
    t0.elapsed()
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap_or_default()
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
    let first = decode::decode(&std::fs::read(shared.join("audio/s2.ogg")).unwrap()).unwrap();
    let t = Transcriber::new(&model, "en", 2);
    let t0 = Instant::now();
    t.transcribe_blocking(&first).expect("load");
    println!(
        "first note (model load + transcription): {:?}; peak RSS {:.1} MiB",
        t0.elapsed(),
        rss_mib()
    );
    let t0 = Instant::now();
    let ctx = WhisperContext::new_with_params(&model, WhisperContextParameters::default())
        .expect("model");
    println!("model load alone: {:?}", t0.elapsed());
    let (mut ours_sum, mut raw_sum) = (Duration::ZERO, Duration::ZERO);
    let mut all = Vec::new();
    for name in ["s1", "s2", "s3", "s4", "s5"] {
        for ext in ["ogg", "wav"] {
            let bytes = std::fs::read(shared.join(format!("audio/{name}.{ext}"))).unwrap();
            let dec = best_of(3, || {
                let t0 = Instant::now();
                let _ = decode::decode(&bytes);
                t0.elapsed()
            });
            let samples = decode::decode(&bytes).unwrap();
            let secs = samples.len() as f64 / 16_000.0;
            let ours = best_of(3, || {
                let t0 = Instant::now();
                t.transcribe_blocking(&samples).unwrap();
                t0.elapsed()
            });
            let base = best_of(3, || raw(&ctx, &samples));
            ours_sum += ours;
            raw_sum += base;
            if ext == "ogg" {
                all.extend_from_slice(&samples);
            }
            println!(
                "{name}.{ext}: {secs:.2} s; decode {dec:?}; transcribe {ours:?} (raw whisper.cpp {base:?}, {:+.1}%); RTF {:.3}; ready {:?}",
                (ours.as_secs_f64() / base.as_secs_f64() - 1.0) * 100.0,
                ours.as_secs_f64() / secs,
                dec + ours
            );
        }
    }
    println!(
        "all samples: ours {ours_sum:?}, raw {raw_sum:?}: overhead {:+.1}%",
        (ours_sum.as_secs_f64() / raw_sum.as_secs_f64() - 1.0) * 100.0
    );
    // A 60-second note: the samples back to back, repeated.
    let mut long = Vec::new();
    while long.len() < 60 * 16_000 {
        long.extend_from_slice(&all);
    }
    long.truncate(60 * 16_000);
    let t0 = Instant::now();
    let tr = t.transcribe_blocking(&long).unwrap();
    let took = t0.elapsed();
    let base = raw(&ctx, &long);
    println!(
        "60 s note: transcribe {took:?} (raw whisper.cpp {base:?}, {:+.1}%); RTF {:.3}; {} words; peak RSS {:.1} MiB (two models loaded here)",
        (took.as_secs_f64() / base.as_secs_f64() - 1.0) * 100.0,
        took.as_secs_f64() / 60.0,
        tr.text.split_whitespace().count(),
        rss_mib()
    );
}
