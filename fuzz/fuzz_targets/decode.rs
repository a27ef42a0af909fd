//! Our Ogg/Opus and WAV decoders on any bytes: samples or an error, never a panic. (Other
//! formats go to symphonia, which its own project fuzzes; the gateway calls it behind
//! `catch_unwind`, while a panic here would abort the fuzzer.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switchboard::voice::decode::native(data);
});
