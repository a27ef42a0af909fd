//! Reading a config file: JSON5 text → located JSON → `${VAR}` expansion → typed [`Config`].
//!
//! Every error says where it is (file, line:column) and which key (a dotted path), because a
//! config that silently does the wrong thing is the failure users of the old gateway fought most.

use super::error::ConfigError;
use super::json5::{self, Node, Number as J5Number, Value as J5};
use super::types::Config;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::path::Path;

/// A parsed config file: its JSON value and where each key path starts in the text.
pub struct Located {
    pub text: String,
    pub value: Value,
    /// Byte offset of each key path (of the key itself for object properties).
    positions: HashMap<String, usize>,
}

impl Located {
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let syntax = |offset: usize, message: String| located_syntax(file, text, offset, message);
        let Some(ast) = json5::parse(text).map_err(|e| syntax(e.offset, e.message))? else {
            return Err(ConfigError::Empty {
                file: file.display().to_string(),
            });
        };
        let mut positions = HashMap::new();
        let value = to_json(&ast, String::new(), &mut positions).map_err(|(o, m)| syntax(o, m))?;
        if !value.is_object() {
            return Err(syntax(
                ast.span.start,
                "the config must be an object ({ ... })".into(),
            ));
        }
        Ok(Self {
            text: text.to_string(),
            value,
            positions,
        })
    }

    /// Line and column (1-based) of `path`, or of its nearest ancestor written in the file.
    pub fn position(&self, path: &str) -> (usize, usize) {
        let mut p = path.to_string();
        loop {
            if let Some(&offset) = self.positions.get(&p) {
                return line_col(&self.text, offset);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return (1, 1),
            }
        }
    }
    /// Expands `${VAR}` and `${VAR:-default}` in every string, then deserializes and validates.
    pub fn into_config(self, file: &Path) -> Result<Config, ConfigError> {
        let mut value = self.value.clone();
        expand_env(&mut value, String::new(), &|name| std::env::var(name).ok())
            .map_err(|(path, msg)| self.invalid(file, &path, msg, None))?;
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path = json_path(e.path());
            let inner = e.into_inner().to_string();
            let (message, suggestion) = describe_serde_error(&inner);
            if let Some(key) = unknown_field(&inner)
                && !path.ends_with(&key)
            {
                path = join(&path, &key);
            }
            self.invalid(file, &path, message, suggestion)
        })?;
        if let Some((path, msg)) = super::validate::validate(&config).into_iter().next() {
            return Err(self.invalid(file, &path, msg, None));
        }
        Ok(config)
    }

    fn invalid(
        &self,
        file: &Path,
        path: &str,
        message: String,
        suggestion: Option<String>,
    ) -> ConfigError {
        let (line, column) = self.position(path);
        ConfigError::Invalid {
            file: file.display().to_string(),
            line,
            column,
            key: if path.is_empty() {
                "(root)".into()
            } else {
                path.to_string()
            },
            message,
            suggestion,
        }
    }
}

fn located_syntax(file: &Path, text: &str, offset: usize, message: String) -> ConfigError {
    let (line, column) = line_col(text, offset);
    ConfigError::Syntax {
        file: file.display().to_string(),
        line,
        column,
        message,
    }
}

pub use json5::line_col;

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The JSON value of a parsed node, recording where each key path is. Duplicate keys are refused
/// (JSON5 lets the last one win silently, which hides mistakes), and so are `Infinity` and `NaN`
/// (valid JSON5, but no setting takes them). A whole number written as `600.` or `2e3` is that
/// integer, as it is in JavaScript.
pub(crate) fn to_json(
    node: &Node,
    path: String,
    positions: &mut HashMap<String, usize>,
) -> Result<Value, (usize, String)> {
    Ok(match &node.value {
        J5::String(s) => Value::String(s.clone()),
        J5::Bool(b) => Value::Bool(*b),
        J5::Null => Value::Null,
        J5::Number(n) => Value::Number(number(*n).ok_or_else(|| {
            (
                node.span.start,
                "no setting takes an infinite or NaN number".to_string(),
            )
        })?),
        J5::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, el) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                positions.insert(p.clone(), el.span.start);
                out.push(to_json(el, p, positions)?);
            }
            Value::Array(out)
        }
        J5::Object(members) => {
            let mut out = Map::new();
            for m in members {
                let p = join(&path, &m.key);
                if out.contains_key(&m.key) {
                    return Err((m.key_span.start, format!("`{p}` is set twice")));
                }
                positions.insert(p.clone(), m.key_span.start);
                let v = to_json(&m.value, p, positions)?;
                out.insert(m.key.clone(), v);
            }
            Value::Object(out)
        }
    })
}

fn number(n: J5Number) -> Option<Number> {
    match n {
        J5Number::Int(i) => Some(Number::from(i)),
        J5Number::UInt(u) => Some(Number::from(u)),
        // 2^63: the first float past i64.
        J5Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_776e18 => {
            Some(Number::from(f as i64))
        }
        J5Number::Float(f) => Number::from_f64(f),
    }
}

/// Expands `${VAR}` (an error when unset) and `${VAR:-default}` in every string value.
pub fn expand_env(
    value: &mut Value,
    path: String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = expand_str(s, lookup).map_err(|m| (path, m))?;
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                expand_env(v, format!("{path}[{i}]"), lookup)?;
            }
        }
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                expand_env(v, join(&path, k), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in \"{s}\""))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!("`${{{expr}}}` is not a valid variable reference"));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write `${{{name}:-}}` to allow it to be empty)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn json_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// The key named in serde's "unknown field `x`" message.
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// A friendlier message, and a did-you-mean from the expected names serde lists.
fn describe_serde_error(msg: &str) -> (String, Option<String>) {
    let expected: Vec<&str> = msg
        .split_once("expected one of ")
        .or_else(|| msg.split_once("expected "))
        .map(|(_, list)| {
            list.split(", ")
                .filter_map(|s| s.trim().strip_prefix('`')?.strip_suffix('`'))
                .collect()
        })
        .unwrap_or_default();
    let given = unknown_field(msg).or_else(|| {
        let rest = msg.strip_prefix("unknown variant `")?;
        Some(rest[..rest.find('`')?].to_string())
    });
    let suggestion = given.as_deref().and_then(|g| nearest(g, &expected));
    let message = if let Some(key) = unknown_field(msg) {
        if expected.is_empty() {
            format!("unknown key `{key}`")
        } else {
            format!("unknown key `{key}` (valid keys: {})", expected.join(", "))
        }
    } else if msg.starts_with("data did not match any variant") {
        "value has the wrong type or form".to_string()
    } else {
        msg.to_string()
    };
    (message, suggestion)
}

/// The candidate closest to `given`, if it is close enough to be a likely typo.
pub fn nearest(given: &str, candidates: &[&str]) -> Option<String> {
    let lower = given.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand_str("a${SET}b", &env).as_deref(), Ok("avalueb"));
        assert_eq!(expand_str("${UNSET:-}", &env).as_deref(), Ok(""));
        assert_eq!(expand_str("${UNSET:-x y}", &env).as_deref(), Ok("x y"));
        assert_eq!(expand_str("${SET:-d}", &env).as_deref(), Ok("value"));
        let err = expand_str("${UNSET}", &env).unwrap_err();
        assert!(err.contains("UNSET is not set"), "{err}");
        assert!(expand_str("${bad name}", &env).is_err());
        assert!(expand_str("${OPEN", &env).is_err());
    }

    #[test]
    fn suggests_near_keys_only() {
        assert_eq!(
            nearest("dmPolcy", &["dmPolicy", "token"]).as_deref(),
            Some("dmPolicy")
        );
        assert_eq!(nearest("zzzzzz", &["dmPolicy", "token"]), None);
    }

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let p = |t: &str| Located::parse(Path::new("c"), t).map(|l| l.value);
        assert_eq!(p("{ a: 600. }").unwrap()["a"], serde_json::json!(600));
        assert_eq!(p("{ a: .2e1 }").unwrap()["a"], serde_json::json!(2));
        assert_eq!(p("{ a: 0.5 }").unwrap()["a"], serde_json::json!(0.5));
        assert!(p("{ a: Infinity }").is_err());
    }
}
