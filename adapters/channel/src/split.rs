//! Splitting long replies at a platform's length limit.
//!
//! Platforms reject messages over their limit (Telegram 4096, Discord 2000 characters), so a long
//! reply is cut into parts, preferring a paragraph break, then a line break, then a space, and
//! never inside a fenced code block when a break outside one exists. When a code block alone is
//! longer than the limit it is cut at a line and the fence is closed and reopened, so each part
//! still renders.

/// Splits `text` into parts of at most `limit` characters, in order. Characters are counted as
/// UTF-16 code units, as Telegram counts its 4096 (and JavaScript-era APIs theirs): an emoji
/// outside the BMP is two. For other text it is the same as counting characters.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    let mut parts = Vec::new();
    let mut rest = text.trim_end().to_string();
    // A fence opened in the previous part that the next part must reopen.
    let mut carry_fence: Option<String> = None;
    loop {
        // Bytes at the start of `rest` that are a reopened fence, not new text: a cut must lie
        // past them, or a part would hold only the fence and the loop would never end.
        let mut reopened = 0;
        if let Some(fence) = carry_fence.take() {
            // A fence line too long to leave room for content is not carried.
            if units(&fence) + 1 < (limit - 4) / 2 {
                rest = format!("{fence}\n{rest}");
                reopened = fence.len() + 1;
            }
        }
        if units(&rest) <= limit {
            if !rest.trim().is_empty() {
                parts.push(rest);
            }
            break;
        }
        // Leave room to close a fence we may have to cut through.
        let window_units = limit - 4;
        let window_end = byte_index(&rest, window_units);
        let window = &rest[..window_end];
        let cut = match best_cut(window) {
            c if c <= reopened => window_end,
            c => c,
        };
        let (head, tail) = rest.split_at(cut);
        let mut head = head.trim_end().to_string();
        if let Some(fence) = open_fence_at_end(&head) {
            head.push_str("\n```");
            carry_fence = Some(fence);
        }
        if !head.trim().is_empty() {
            parts.push(head);
        }
        rest = tail.trim_start_matches(['\n', ' ']).to_string();
    }
    parts
}

/// The length in UTF-16 code units.
pub fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Byte index of the longest prefix of at most `n` UTF-16 code units (or the end).
fn byte_index(s: &str, n: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.len_utf16();
        if used > n {
            return i;
        }
    }
    s.len()
}

/// Where to cut `window`: the last paragraph break outside a code block, else the last line
/// break outside one, else the last line break, else the last space, else the window's end.
fn best_cut(window: &str) -> usize {
    let mut in_fence = false;
    let mut para_outside = None;
    let mut line_outside = None;
    let mut line_any = None;
    let mut offset = 0;
    for line in window.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        offset += line.len();
        if !line.ends_with('\n') || offset >= window.len() {
            continue;
        }
        line_any = Some(offset);
        if !in_fence {
            line_outside = Some(offset);
            if window[offset..].starts_with('\n') {
                para_outside = Some(offset);
            }
        }
    }
    let min_useful = window.len() / 4;
    let pick = |c: Option<usize>| c.filter(|&i| i > min_useful);
    pick(para_outside)
        .or(pick(line_outside))
        .or(pick(line_any))
        .or_else(|| pick(window.rfind(' ').map(|i| i + 1)))
        .unwrap_or(window.len())
}

/// If `text` ends inside a fenced block, the fence line that opened it (with its language).
fn open_fence_at_end(text: &str) -> Option<String> {
    let mut open: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            open = match open {
                Some(_) => None,
                None => Some(t.to_string()),
            };
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_message("hello", 100), vec!["hello".to_string()]);
    }

    #[test]
    fn splits_on_paragraphs_and_keeps_order() {
        let para: String = "word ".repeat(150);
        let text = format!("{para}\n\n{para}\n\n{para}");
        let parts = split_message(&text, 1000);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 1000));
        let joined: String = parts.join(" ");
        assert_eq!(
            joined.split_whitespace().count(),
            text.split_whitespace().count()
        );
    }

    #[test]
    fn does_not_cut_inside_code_block_when_avoidable() {
        let code = format!("```rust\n{}```", "let x = 1;\n".repeat(20));
        let text = format!("{}\n\n{code}\n\nafter", "intro ".repeat(60));
        let parts = split_message(&text, 400);
        for p in &parts {
            assert_eq!(p.matches("```").count() % 2, 0, "unbalanced fence in {p:?}");
            assert!(p.chars().count() <= 400);
        }
        assert!(parts.iter().any(|p| p.starts_with("```rust")));
    }

    #[test]
    fn oversized_code_block_is_closed_and_reopened() {
        let text = format!("```py\n{}```", "print('x')\n".repeat(100));
        let parts = split_message(&text, 300);
        assert!(parts.len() > 1);
        for p in &parts {
            assert!(p.chars().count() <= 300);
            assert_eq!(p.matches("```").count() % 2, 0, "unbalanced fence in {p:?}");
        }
        assert!(parts[1].starts_with("```py"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let text = "é".repeat(5000);
        let parts = split_message(&text, 4096);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.chars().count() <= 4096));
        assert_eq!(parts.iter().map(|p| p.chars().count()).sum::<usize>(), 5000);
    }

    /// Found by the `split` fuzz target: at the smallest limit a reopened fence filled the whole
    /// part, nothing was consumed, and the loop produced parts until memory ran out.
    #[test]
    fn tiny_limits_with_fences_always_progress() {
        let text = "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0# Title <b>\n\n**bold *mt* `cod\0\0\0\0\0\0\0\0\0\0e & <>`\n\n> quote**\n\n```rust\nlet a = cb> ; \n```\n\n> quote\n\n- ";
        for limit in [0, 16, 17, 20, 31] {
            let parts = split_message(text, limit);
            assert!(parts.len() < 100, "{limit}: {} parts", parts.len());
            assert!(parts.iter().all(|p| p.chars().count() <= limit.max(16)));
        }
        let long_fence = format!("```{}\n{}\n```", "x".repeat(50), "code ".repeat(40));
        let parts = split_message(&long_fence, 30);
        assert!(parts.len() < 100 && parts.iter().all(|p| p.chars().count() <= 30));
    }

    #[test]
    fn astral_characters_count_twice() {
        let text = "😀".repeat(3000); // 6,000 UTF-16 units
        let parts = split_message(&text, 4096);
        assert_eq!(parts.len(), 2);
        assert!(
            parts.iter().all(|p| units(p) <= 4096),
            "{:?}",
            parts.iter().map(|p| units(p)).collect::<Vec<_>>()
        );
        assert_eq!(parts.iter().map(|p| p.chars().count()).sum::<usize>(), 3000);
    }
}
