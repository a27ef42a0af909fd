//! `config get` and `config set`.
//!
//! `set` replaces the bytes of one value (or inserts one member) rather than re-serializing, so the user's comments,
//! ordering and layout survive; the edited text is fully validated before it replaces the file, so a
//! `set` can never leave behind a config the gateway would refuse.

use super::json5::{self, Value as J5};
use super::{Config, ConfigError};
use serde_json::Value;
use std::ops::Range;
use std::path::Path;

const SECRET_KEYS: &[&str] = &["token", "apiKey", "secret", "password", "clientSecret"];

/// The effective value at `key` (dotted path; empty for everything), secrets shown as `***`.
pub fn get(config: &Config, key: &str) -> Result<Value, ConfigError> {
    let mut value = serde_json::to_value(config).map_err(|e| ConfigError::Key(e.to_string()))?;
    mask_secrets(&mut value);
    let mut cur = &value;
    for seg in segments(key) {
        cur = match cur {
            Value::Object(o) => o.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| unknown_key(key, cur))?;
    }
    Ok(cur.clone())
}

fn unknown_key(key: &str, parent: &Value) -> ConfigError {
    let last = segments(key).last().unwrap_or_default();
    let names: Vec<&str> = match parent {
        Value::Object(o) => o.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let hint = super::source::nearest(last, &names)
        .map(|s| format!(" — did you mean `{s}`?"))
        .unwrap_or_default();
    ConfigError::Key(format!("no config key `{key}`{hint}"))
}

fn segments(key: &str) -> impl Iterator<Item = &str> {
    key.split('.').filter(|s| !s.is_empty())
}

/// Every secret value in the config (tokens, keys, passwords, and the values of MCP servers'
/// `env` and `headers`), for the log redactor. Short values are left out: they would mask
/// ordinary words and are no secret worth the name.
pub fn secrets(config: &Config) -> Vec<String> {
    fn walk(v: &Value, all: bool, out: &mut Vec<String>) {
        match v {
            Value::String(s) if all && s.len() >= 6 => out.push(s.clone()),
            Value::String(s) => {
                if let Some(r) = url_password(s)
                    && r.len() >= 6
                {
                    out.push(s[r].to_string());
                }
            }
            Value::Object(o) => {
                for (k, v) in o {
                    let secret = all
                        || SECRET_KEYS.contains(&k.as_str())
                        || matches!(k.as_str(), "env" | "headers");
                    walk(v, secret, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, all, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(config) {
        walk(&v, false, &mut out);
    }
    // A header such as `Bearer abc…` also appears without its scheme.
    let bare: Vec<String> = out
        .iter()
        .filter_map(|s| s.split_once(' ').map(|(_, t)| t.trim().to_string()))
        .filter(|t| t.len() >= 6)
        .collect();
    out.extend(bare);
    out.sort();
    out.dedup();
    out
}

/// The password in a URL's user info (`postgres://user:PASSWORD@host/db`) or its `password=`
/// query parameter, as a byte range of `s`.
fn url_password(s: &str) -> Option<Range<usize>> {
    let after_scheme = s.find("://")? + 3;
    let rest = &s[after_scheme..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..authority_end].rfind('@')
        && let Some(colon) = rest[..at].find(':')
        && colon + 1 < at
    {
        return Some(after_scheme + colon + 1..after_scheme + at);
    }
    let key = s.find("password=")? + "password=".len();
    let end = s[key..].find('&').map_or(s.len(), |e| key + e);
    (end > key).then_some(key..end)
}

fn mask_secrets(v: &mut Value) {
    if let Value::String(s) = v
        && let Some(range) = url_password(s)
    {
        s.replace_range(range, "***");
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str())
                    && matches!(v, Value::String(s) if !s.is_empty())
                {
                    *v = Value::String("***".into());
                } else {
                    mask_secrets(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Sets `key` to `raw` (JSON5 if it parses as such, else a plain string) in the file at `path`,
/// keeping everything else in the file as written. Refuses a change that makes the config invalid.
pub fn set(path: &Path, key: &str, raw: &str) -> Result<(), ConfigError> {
    let text = super::read_text(path)?;
    let new_text = set_in_text(path, &text, key, raw)?;
    Config::from_text(path, &new_text)?;
    write_atomically(path, &new_text).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Sets several keys at once (each `raw` as for `set`), checks the result once and writes it
/// atomically; a file that does not exist yet starts with `header` (comment lines).
pub fn set_all(path: &Path, header: &str, edits: &[(String, String)]) -> Result<(), ConfigError> {
    let mut text = if path.exists() {
        super::read_text(path)?
    } else {
        header.to_string()
    };
    for (key, raw) in edits {
        text = set_in_text(path, &text, key, raw)?;
    }
    Config::from_text(path, &text)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ConfigError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    write_atomically(path, &text).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The text with `key` set: the old value's bytes replaced, or a new member inserted after the
/// last one of the innermost object that exists, in the file's own indentation, comma style and
/// line endings. Nothing else in the text changes.
pub(crate) fn set_in_text(
    path: &Path,
    text: &str,
    key: &str,
    raw: &str,
) -> Result<String, ConfigError> {
    let segs: Vec<&str> = segments(key).collect();
    if segs.is_empty() {
        return Err(ConfigError::Key("give a key, e.g. gateway.port".into()));
    }
    let value = parse_value(raw);
    let root = json5::parse(text).map_err(|e| {
        let (line, column) = json5::line_col(text, e.offset);
        ConfigError::Syntax {
            file: path.display().to_string(),
            line,
            column,
            message: e.message,
        }
    })?;
    let Some(mut node) = root else {
        let nl = line_ending(text);
        let sep = if text.is_empty() || text.ends_with(['\n', '\r']) {
            ""
        } else {
            nl
        };
        let member = render_member(&segs, &value);
        return Ok(format!("{text}{sep}{{{nl}  {member},{nl}}}{nl}"));
    };
    for (i, seg) in segs.iter().enumerate() {
        let J5::Object(members) = &node.value else {
            let what = if i == 0 {
                "the file".to_string()
            } else {
                format!("`{}`", segs[..i].join("."))
            };
            return Err(ConfigError::Key(format!(
                "{what} is not an object, so `{key}` cannot be set"
            )));
        };
        match members.iter().rev().find(|m| m.key == *seg) {
            Some(m) if i + 1 == segs.len() => {
                let span = m.value.span.clone();
                return Ok(splice(text, &[(span, render(&value))]));
            }
            Some(m) => node = m.value.clone(),
            None => {
                let member = render_member(&segs[i..], &value);
                return Ok(insert_member(text, &node, members, &member));
            }
        }
    }
    Err(ConfigError::Key(format!("`{key}` cannot be set")))
}

/// `a: { b: value }` for the remaining path `[a, b]`.
fn render_member(segs: &[&str], value: &Value) -> String {
    let mut out = render(value);
    for (i, seg) in segs.iter().enumerate().rev() {
        out = if i + 1 == segs.len() {
            format!("{}: {out}", render_key(seg))
        } else {
            format!("{}: {{ {out} }}", render_key(seg))
        };
    }
    out
}

fn render_key(key: &str) -> String {
    if json5::is_identifier(key) {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

/// A value as JSON5 text: JSON, with unquoted keys where they may be.
fn render(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("[{}]", a.iter().map(render).collect::<Vec<_>>().join(", ")),
        Value::Object(o) if o.is_empty() => "{}".into(),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", render_key(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn line_ending(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else if text.contains('\r') {
        "\r"
    } else {
        "\n"
    }
}

/// Applies non-overlapping replacements.
fn splice(text: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut edits: Vec<_> = edits.iter().collect();
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (range, with) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(with);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind(['\n', '\r']).map_or(0, |i| i + 1)
}

/// Inserts `member` into the object `obj` (whose members are `members`).
fn insert_member(text: &str, obj: &json5::Node, members: &[json5::Member], member: &str) -> String {
    let open = obj.span.start;
    let close = obj.span.end - 1;
    let nl = line_ending(text);
    let Some(last) = members.last() else {
        let inner = &text[open + 1..close];
        return if inner.contains(['\n', '\r']) {
            let brace_line = &text[line_start(text, open)..open];
            let indent: String = brace_line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            splice(
                text,
                &[(open + 1..open + 1, format!("{nl}{indent}  {member},"))],
            )
        } else if inner.trim().is_empty() {
            splice(text, &[(open + 1..close, format!(" {member} "))])
        } else {
            splice(text, &[(open + 1..open + 1, format!(" {member},"))])
        };
    };
    let value_end = last.value.span.end;
    let after = json5::skip_trivia(text, value_end);
    let has_comma = text[after..].starts_with(',');
    let first_key = members[0].key_span.start;
    let multiline = text[open..first_key].contains(['\n', '\r']);
    if !multiline {
        return if has_comma {
            splice(text, &[(after + 1..after + 1, format!(" {member},"))])
        } else {
            splice(text, &[(value_end..value_end, format!(", {member}"))])
        };
    }
    let key_line = line_start(text, last.key_span.start);
    let lead = &text[key_line..last.key_span.start];
    let indent = if lead.chars().all(|c| c == ' ' || c == '\t') {
        lead.to_string()
    } else {
        "  ".to_string()
    };
    // After the comma (if any) and a comment on the same line, so that comment stays with the
    // member it describes.
    let mut anchor = if has_comma { after + 1 } else { value_end };
    let line_end = text[anchor..]
        .find(['\n', '\r'])
        .map_or(text.len(), |i| anchor + i);
    let tail = text[anchor..line_end].trim_start();
    if tail.starts_with("//") || tail.is_empty() {
        anchor = line_end;
    }
    let trailing = if has_comma { "," } else { "" };
    let mut edits = vec![(anchor..anchor, format!("{nl}{indent}{member}{trailing}"))];
    if !has_comma {
        if anchor == value_end {
            edits[0].1.insert(0, ',');
        } else {
            edits.push((value_end..value_end, ",".into()));
        }
    }
    splice(text, &edits)
}

fn parse_value(raw: &str) -> Value {
    match json5::parse(raw) {
        Ok(Some(node)) => super::source::to_json(&node, String::new(), &mut Default::default())
            .unwrap_or_else(|_| Value::String(raw.to_string())),
        _ => Value::String(raw.to_string()),
    }
}

/// Writes via a temporary file and a rename, keeping the original's permissions, so a crash
/// never leaves a half-written config.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("config");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_in_a_url_is_found_and_masked() {
        let masked = |s: &str| {
            let mut v = serde_json::Value::String(s.into());
            super::mask_secrets(&mut v);
            v.as_str().unwrap_or_default().to_string()
        };
        assert_eq!(
            masked("postgres://bot:s3cr3t-pw@db.internal:5432/switchboard"),
            "postgres://bot:***@db.internal:5432/switchboard"
        );
        assert_eq!(
            masked("postgres://db/x?user=bot&password=s3cr3t&sslmode=require"),
            "postgres://db/x?user=bot&password=***&sslmode=require"
        );
        assert_eq!(masked("postgres://bot@db/x"), "postgres://bot@db/x");
        assert_eq!(masked("sqlite"), "sqlite");
    }

    use super::*;

    const TEXT: &str = "{\n  // where we listen\n  gateway: { port: 1234 }, // inline note\n  agents: { jarvis: { coordinator: true, model: \"default\" } },\n  providers: { p: {} },\n  models: { default: \"p/m\" },\n}\n";

    #[test]
    fn set_keeps_comments_and_layout() {
        let out = set_in_text(Path::new("c"), TEXT, "gateway.port", "4321").unwrap();
        assert!(out.contains("// where we listen"));
        assert!(out.contains("// inline note"));
        assert!(out.contains("port: 4321"), "{out}");
        let out = set_in_text(Path::new("c"), TEXT, "gateway.bind", "lan").unwrap();
        assert!(out.contains("\"lan\""), "{out}");
        let c = Config::from_text(Path::new("c"), &out).unwrap();
        assert_eq!(c.gateway.bind, "lan");
        assert_eq!(c.gateway.port, 1234);
    }

    #[test]
    fn set_creates_missing_objects() {
        let out = set_in_text(Path::new("c"), TEXT, "workers.maxConcurrent", "2").unwrap();
        let c = Config::from_text(Path::new("c"), &out).unwrap();
        assert_eq!(c.workers.max_concurrent, 2);
    }

    #[test]
    fn get_masks_secrets() {
        let text = TEXT.replace("port: 1234", "port: 1234, token: \"hunter2\"");
        let c = Config::from_text(Path::new("c"), &text).unwrap();
        assert_eq!(
            get(&c, "gateway.token").unwrap(),
            Value::String("***".into())
        );
        let all = get(&c, "").unwrap().to_string();
        assert!(!all.contains("hunter2"));
        let e = get(&c, "gateway.prot").unwrap_err().to_string();
        assert!(e.contains("did you mean `port`"), "{e}");
    }

    fn set(text: &str, key: &str, raw: &str) -> String {
        set_in_text(Path::new("c"), text, key, raw).unwrap()
    }

    #[test]
    fn inserts_in_the_files_own_style() {
        // Multi-line, trailing commas, a comment after the last member stays with it.
        let text = "{\n    gateway: {\n        port: 1, // mine\n    },\n}\n";
        assert_eq!(
            set(text, "gateway.bind", "lan"),
            "{\n    gateway: {\n        port: 1, // mine\n        bind: \"lan\",\n    },\n}\n"
        );
        // No trailing commas: a comma is added after the old last member, none after the new.
        let text = "{\n  gateway: {\n    port: 1 // mine\n  }\n}";
        assert_eq!(
            set(text, "gateway.bind", "lan"),
            "{\n  gateway: {\n    port: 1, // mine\n    bind: \"lan\"\n  }\n}"
        );
        // One line stays one line; missing parents are created inline.
        assert_eq!(
            set("{ a: 1 }", "gateway.port", "2"),
            "{ a: 1, gateway: { port: 2 } }"
        );
        assert_eq!(set("{}", "gateway.port", "2"), "{ gateway: { port: 2 } }");
        assert_eq!(set("{ a: 1, }", "b", "x y"), "{ a: 1, b: \"x y\", }");
        // Keys that are not identifiers are quoted.
        assert_eq!(set("{}", "routing", "[]"), "{ routing: [] }");
        assert_eq!(
            set("{ g: {} }", "g.multi-word", "1"),
            "{ g: { \"multi-word\": 1 } }"
        );
    }

    #[test]
    fn replaces_only_the_value_and_keeps_line_endings() {
        let text = "{\r\n  // c\r\n  gateway: { port: 0x10 },\r\n}\r\n";
        assert_eq!(
            set(text, "gateway.port", "4321"),
            "{\r\n  // c\r\n  gateway: { port: 4321 },\r\n}\r\n"
        );
        let text = "{\r  gateway: {\r    port: 1,\r  },\r}";
        assert_eq!(
            set(text, "gateway.bind", "lan"),
            "{\r  gateway: {\r    port: 1,\r    bind: \"lan\",\r  },\r}"
        );
        // A file of only comments gets an object after them.
        assert_eq!(set("// hi", "a", "1"), "// hi\n{\n  a: 1,\n}\n");
        // Values parse as JSON5.
        assert_eq!(set("{ a: 1 }", "a", "{ x: 'y' }"), "{ a: { x: \"y\" } }");
        assert_eq!(set("{ a: 1 }", "a", "true"), "{ a: true }");
        let e = set_in_text(Path::new("c"), "{ a: 1 }", "a.b", "1").unwrap_err();
        assert!(e.to_string().contains("`a` is not an object"), "{e}");
    }
}
