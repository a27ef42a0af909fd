//! Markdown (what models write) → the HTML subset Telegram renders.
//!
//! Telegram accepts `<b> <i> <s> <u> <code> <pre> <a> <blockquote>` and needs `&`, `<` and `>`
//! escaped everywhere else; anything it cannot show (headings, lists, tables, images) becomes
//! plain text with light decoration. If Telegram still rejects the result, the sender falls back
//! to the plain Markdown text.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

pub fn markdown_to_html(md: &str) -> String {
    let mut out = String::with_capacity(md.len() + md.len() / 8);
    let mut list_depth: Vec<Option<u64>> = Vec::new();
    let parser = Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES);
    for event in parser {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => {}
                Tag::Heading { .. } => out.push_str("<b>"),
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(kind) => match kind {
                    CodeBlockKind::Fenced(lang) if !lang.trim().is_empty() => {
                        let lang = lang.split_whitespace().next().unwrap_or_default();
                        out.push_str(&format!("<pre><code class=\"language-{}\">", escape(lang)));
                    }
                    _ => out.push_str("<pre><code>"),
                },
                Tag::List(start) => {
                    ensure_newline(&mut out);
                    list_depth.push(start);
                }
                Tag::Item => {
                    ensure_newline(&mut out);
                    let indent = "  ".repeat(list_depth.len().saturating_sub(1));
                    match list_depth.last_mut() {
                        Some(Some(n)) => {
                            out.push_str(&format!("{indent}{n}. "));
                            *n += 1;
                        }
                        _ => out.push_str(&format!("{indent}• ")),
                    }
                }
                Tag::Emphasis => out.push_str("<i>"),
                Tag::Strong => out.push_str("<b>"),
                Tag::Strikethrough => out.push_str("<s>"),
                Tag::Link { dest_url, .. } => {
                    out.push_str(&format!("<a href=\"{}\">", escape_attr(&dest_url)))
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str("\n\n"),
                TagEnd::Heading(_) => out.push_str("</b>\n\n"),
                TagEnd::BlockQuote(_) => {
                    trim_end_newlines(&mut out);
                    out.push_str("</blockquote>\n\n");
                }
                TagEnd::CodeBlock => {
                    if out.ends_with('\n') {
                        out.pop();
                    }
                    out.push_str("</code></pre>\n\n");
                }
                TagEnd::List(_) => {
                    list_depth.pop();
                    trim_end_newlines(&mut out);
                    out.push_str("\n\n");
                }
                TagEnd::Item => trim_end_newlines(&mut out),
                TagEnd::Emphasis => out.push_str("</i>"),
                TagEnd::Strong => out.push_str("</b>"),
                TagEnd::Strikethrough => out.push_str("</s>"),
                TagEnd::Link => out.push_str("</a>"),
                TagEnd::TableCell => out.push_str(" | "),
                TagEnd::TableRow | TagEnd::TableHead => out.push('\n'),
                _ => {}
            },
            Event::Text(t) => out.push_str(&escape(&t)),
            Event::Code(t) => {
                out.push_str("<code>");
                out.push_str(&escape(&t));
                out.push_str("</code>");
            }
            Event::Html(t) | Event::InlineHtml(t) => out.push_str(&escape(&t)),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("———\n\n"),
            Event::TaskListMarker(done) => out.push_str(if done { "☑ " } else { "☐ " }),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

fn ensure_newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn trim_end_newlines(out: &mut String) {
    while out.ends_with('\n') {
        out.pop();
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape_attr(s: &str) -> String {
    escape(s).replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            markdown_to_html("**Bold** & *it* <tag> `a<b`"),
            "<b>Bold</b> &amp; <i>it</i> &lt;tag&gt; <code>a&lt;b</code>"
        );
        assert_eq!(
            markdown_to_html("```rust\nif a < b && c {}\n```"),
            "<pre><code class=\"language-rust\">if a &lt; b &amp;&amp; c {}</code></pre>"
        );
        assert_eq!(
            markdown_to_html("# Plan\n\n- one\n- two\n\nDone."),
            "<b>Plan</b>\n\n• one\n• two\n\nDone."
        );
        assert_eq!(
            markdown_to_html("[site](https://x.y/?a=1&b=\"2\")"),
            "<a href=\"https://x.y/?a=1&amp;b=&quot;2&quot;\">site</a>"
        );
    }
}
