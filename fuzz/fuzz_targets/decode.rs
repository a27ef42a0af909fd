//! The Ogg/Opus and WAV decoders on any bytes: samples or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switchboard::voice::decode::decode(data);
});
