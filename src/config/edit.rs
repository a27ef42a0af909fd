//! `config get` and `config set`.
//!
//! `set` edits the file's concrete syntax tree rather than re-serializing it, so the user's comments,
//! ordering and layout survive; the edited text is fully validated before it replaces the file, so a
//! `set` can never leave behind a config the gateway would refuse.

use super::{Config, ConfigError};
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use serde_json::Value;
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

fn mask_secrets(v: &mut Value) {
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
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let new_text = set_in_text(path, &text, key, raw)?;
    Config::from_text(path, &new_text)?;
    write_atomically(path, &new_text).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })
}

pub(crate) fn set_in_text(
    path: &Path,
    text: &str,
    key: &str,
    raw: &str,
) -> Result<String, ConfigError> {
    let segs: Vec<&str> = segments(key).collect();
    let Some((last, parents)) = segs.split_last() else {
        return Err(ConfigError::Key("give a key, e.g. gateway.port".into()));
    };
    let root =
        CstRootNode::parse(text, &ParseOptions::default()).map_err(|e| ConfigError::Syntax {
            file: path.display().to_string(),
            line: e.line_display(),
            column: e.column_display(),
            message: e.kind().to_string(),
        })?;
    let mut obj = root.object_value_or_set();
    for (i, seg) in parents.iter().enumerate() {
        obj = obj.object_value_or_create(seg).ok_or_else(|| {
            ConfigError::Key(format!(
                "`{}` is not an object, so `{key}` cannot be set",
                segs[..=i].join(".")
            ))
        })?;
    }
    let value = to_input(parse_value(raw));
    match obj.get(last) {
        Some(prop) => prop.set_value(value),
        None => {
            obj.append(last, value);
        }
    }
    Ok(root.to_string())
}

fn parse_value(raw: &str) -> Value {
    jsonc_parser::parse_to_serde_value::<Value>(raw, &ParseOptions::default())
        .ok()
        .filter(|v| !v.is_null() || raw.trim() == "null")
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

fn to_input(v: Value) -> CstInputValue {
    match v {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s),
        Value::Array(a) => CstInputValue::Array(a.into_iter().map(to_input).collect()),
        Value::Object(o) => {
            CstInputValue::Object(o.into_iter().map(|(k, v)| (k, to_input(v))).collect())
        }
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
}
