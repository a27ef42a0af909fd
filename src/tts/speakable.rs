//! A reply as it should be read aloud: Markdown marks removed, code blocks and tables named
//! rather than read symbol by symbol, links read by their text or their site, and the whole cut
//! into pieces a speech API takes (at sentence boundaries).

/// What one speech request takes at most (OpenAI's `/audio/speech` allows 4,096 characters).
pub const PIECE_CHARS: usize = 4000;

/// `markdown` as plain sentences to speak.
pub fn speakable(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut in_code = false;
    let mut code_lines = 0usize;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            if in_code {
                out.push_str(if code_lines == 1 {
                    "(A line of code is shown in the text.)\n"
                } else {
                    "(A code block is shown in the text.)\n"
                });
            }
            in_code = !in_code;
            code_lines = 0;
            continue;
        }
        if in_code {
            code_lines += 1;
            continue;
        }
        if trimmed.starts_with('|') {
            // A table row: named once, not read cell by cell.
            if !out.ends_with("(A table is shown in the text.)\n") {
                out.push_str("(A table is shown in the text.)\n");
            }
            continue;
        }
        let line = trimmed
            .trim_start_matches('#')
            .trim_start_matches('>')
            .trim_start();
        let line = line
            .strip_prefix("- ")
            .or_else(|| line.strip_prefix("* "))
            .or_else(|| line.strip_prefix("+ "))
            .unwrap_or(line);
        let spoken = inline(line);
        if spoken.trim().is_empty() {
            continue;
        }
        out.push_str(spoken.trim());
        // A line without its own full stop still ends where it ends when read.
        if !spoken.trim_end().ends_with(['.', '!', '?', ':', ';', ',']) {
            out.push('.');
        }
        out.push('\n');
    }
    if in_code {
        out.push_str("(A code block is shown in the text.)\n");
    }
    out.trim().to_string()
}

/// One line: links, inline code, emphasis and bare URLs made speakable.
fn inline(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // [text](url) → text
        if c == '['
            && let Some(close) = find(&chars, i + 1, ']')
            && chars.get(close + 1) == Some(&'(')
            && let Some(end) = find(&chars, close + 2, ')')
        {
            out.extend(&chars[i + 1..close]);
            i = end + 1;
            continue;
        }
        // A bare URL → "a link to example.com"
        if (c == 'h' || c == 'w') && starts_url(&chars[i..]) {
            let end = chars[i..]
                .iter()
                .position(|c| c.is_whitespace())
                .map_or(chars.len(), |p| i + p);
            let url: String = chars[i..end].iter().collect();
            let url = url.trim_end_matches(['.', ',', ')', ';', '!', '?']);
            let consumed = i + url.chars().count();
            out.push_str(&format!("a link to {}", host(url)));
            i = consumed;
            continue;
        }
        match c {
            '*' | '_' | '`' | '~' => {
                // Emphasis and code marks are not read; a snake_case word keeps its underscore.
                let word_inside = c == '_'
                    && i > 0
                    && chars[i - 1].is_alphanumeric()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if word_inside {
                    out.push(' ');
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn find(chars: &[char], from: usize, what: char) -> Option<usize> {
    chars
        .get(from..)?
        .iter()
        .position(|c| *c == what)
        .map(|p| from + p)
}

fn starts_url(rest: &[char]) -> bool {
    let s: String = rest.iter().take(8).collect();
    s.starts_with("https://") || s.starts_with("http://") || s.starts_with("www.")
}

fn host(url: &str) -> String {
    let rest = url
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    host.trim_start_matches("www.").to_string()
}

/// `text` in pieces of at most `max` characters, cut after sentences where it can (else after
/// words, else anywhere).
pub fn pieces(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..limit];
        let cut = head
            .rfind(['.', '!', '?', '\n'])
            .map(|i| i + 1)
            .filter(|i| *i > limit / 3)
            .or_else(|| head.rfind(' ').filter(|i| *i > 0))
            .unwrap_or(limit);
        out.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out.retain(|p| !p.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_made_speakable() {
        let md = "# Plan\n\nHere is **the plan**, see [the docs](https://example.com/a) \
                  or https://www.rust-lang.org/learn.\n\n- first `cargo build`\n- then ship\n\n\
                  ```rust\nfn main() {}\nlet x = 1;\n```\n| a | b |\n|---|---|\n| 1 | 2 |\nDone!";
        let s = speakable(md);
        assert_eq!(
            s,
            "Plan.\nHere is the plan, see the docs or a link to rust-lang.org.\nfirst cargo build.\n\
             then ship.\n(A code block is shown in the text.)\n(A table is shown in the text.)\nDone!"
        );
        assert_eq!(speakable("a snake_case name"), "a snake case name.");
    }

    #[test]
    fn long_text_is_cut_after_sentences() {
        let text = "One two three. Four five six. Seven eight nine.";
        assert_eq!(
            pieces(text, 20),
            vec!["One two three.", "Four five six.", "Seven eight nine."]
        );
        let p = pieces(&"word ".repeat(100), 42);
        assert!(p.iter().all(|p| p.chars().count() <= 42), "{p:?}");
        assert_eq!(p.join(" "), "word ".repeat(100).trim());
        assert_eq!(pieces("", 10), Vec::<String>::new());
    }
}
