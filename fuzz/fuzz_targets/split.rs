//! The message splitter: every part fits, none is empty, and no visible text is lost (the
//! original's non-space characters appear, in order, in the parts; fences may be added).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &str)| {
    let (limit, text) = input;
    let limit = 16 + usize::from(limit % 4096);
    let parts = switchboard_channel::split_message(text, limit);
    for p in &parts {
        assert!(
            switchboard_channel::utf16_len(p) <= limit,
            "part over the limit"
        );
        assert!(!p.trim().is_empty(), "empty part");
    }
    let mut joined = parts
        .iter()
        .flat_map(|p| p.chars())
        .filter(|c| !c.is_whitespace());
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        assert!(joined.any(|j| j == c), "text lost: {c:?}");
    }
});
