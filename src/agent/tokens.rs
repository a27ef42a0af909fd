//! The one token estimate used when a provider does not report usage. Providers report the real
//! count of every request (`usage.input_tokens`), and that is what compaction uses when present.
//!
//! The estimate counts ~4 bytes of ASCII per token and one token per non-ASCII character (CJK and
//! emoji are about one token each), plus a few tokens of framing per message.

use crate::providers::{Block, Message};

pub fn estimate_text(s: &str) -> u64 {
    let ascii = s.bytes().filter(u8::is_ascii).count() as u64;
    let other = s.chars().filter(|c| !c.is_ascii()).count() as u64;
    ascii.div_ceil(4) + other
}

pub fn estimate(system: &str, messages: &[Message]) -> u64 {
    let mut n = estimate_text(system);
    for m in messages {
        n += 4;
        for b in &m.content {
            n += match b {
                Block::Text { text } => estimate_text(text),
                Block::ToolUse { name, input, .. } => {
                    estimate_text(name) + estimate_text(&input.to_string())
                }
                Block::ToolResult { content, .. } => estimate_text(content),
                // What a provider charges for an image of the size we send (≤ 1568 px).
                Block::ImageFile { .. } => 1600,
                // About 1,500–3,000 tokens a page; a typical PDF sent in chat is a few pages.
                Block::DocumentFile { path, .. } => std::fs::metadata(path)
                    .map(|m| (m.len() / 20).clamp(2_000, 100_000))
                    .unwrap_or(2_000),
            };
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ascii_by_bytes_and_others_by_character() {
        assert_eq!(estimate_text("abcd"), 1);
        assert_eq!(estimate_text("abcde"), 2);
        assert_eq!(estimate_text("日本語"), 3);
        assert_eq!(estimate("abcd", &[Message::user("abcdefgh")]), 1 + 4 + 2);
    }
}
