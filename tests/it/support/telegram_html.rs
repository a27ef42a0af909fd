//! Telegram's HTML parse mode, as the Bot API checks it: used by the fake Bot API to refuse what
//! Telegram would refuse, and by the fuzz target for our Markdown renderer. Self-contained (no
//! other support code), so both can include it.

/// Checks text as Telegram's HTML parse mode does, returning the visible text: only its tags
/// (properly nested), only `&lt; &gt; &amp; &quot;` and numeric entities, no stray `<` or `&`.
pub fn telegram_html(text: &str) -> Result<String, String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ];
    let mut visible = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let end = rest.find('>').ok_or_else(|| {
                    format!("unclosed start tag at {:?}", &rest[..rest.len().min(20)])
                })?;
                let inner = &rest[1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_lowercase();
                    match open.pop() {
                        Some(top) if top == name => {}
                        other => {
                            return Err(format!("unmatched end tag </{name}> (open: {other:?})"));
                        }
                    }
                } else {
                    let name = inner
                        .split(|c: char| c.is_whitespace())
                        .next()
                        .unwrap_or_default()
                        .to_lowercase();
                    if !TAGS.contains(&name.as_str()) {
                        return Err(format!("unsupported start tag \"{name}\""));
                    }
                    open.push(name);
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let end = rest
                    .find(';')
                    .filter(|e| *e <= 10)
                    .ok_or("can't find end of the entity")?;
                let entity = &rest[1..end];
                let ch = match entity {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad entity")?,
                    e if e.starts_with('#') => e[1..]
                        .parse::<u32>()
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad entity")?,
                    e => return Err(format!("unsupported HTML entity &{e};")),
                };
                visible.push(ch);
                rest = &rest[end + 1..];
            }
            '>' => return Err("unexpected '>'".into()),
            c => {
                visible.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    match open.pop() {
        Some(tag) => Err(format!(
            "can't find end tag corresponding to start tag \"{tag}\""
        )),
        None => Ok(visible),
    }
}
