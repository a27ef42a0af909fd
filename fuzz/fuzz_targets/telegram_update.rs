//! Inbound update conversion on any JSON: a message for the core, or nothing; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(m) = switchboard_telegram::inbound_from_json(data) {
        assert!(!m.message_id.is_empty());
    }
});
