//! Masks secrets in log lines. Two nets: every secret value the config holds, replaced
//! wherever it appears; and shapes that are secrets whatever their source (a Telegram bot token
//! in a Bot API URL, `Bearer`/`Bot` authorization values, `sk-…` keys, `"access_token": "…"`
//! fields in a provider's error body), which also covers stored OAuth tokens the config does
//! not name.

use regex::bytes::Regex;
use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, LazyLock};
use tracing_subscriber::fmt::MakeWriter;

pub const MASK: &str = "***";

static SHAPES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"bot[0-9]{5,}:[A-Za-z0-9_-]{20,}", "bot***"),
        (r"(?i)\b(bearer|bot)(\s+)[A-Za-z0-9._~+/=-]{12,}", "$1$2***"),
        (r"\bsk-[A-Za-z0-9_-]{12,}", "sk-***"),
        (
            r#"(?i)("?\b(?:access_token|refresh_token|id_token|api_key|apikey|x-api-key|client_secret|password|secret_token)\b"?\s*[:=]\s*"?)[^"\s,&}]{6,}"#,
            "${1}***",
        ),
    ]
    .into_iter()
    // ASCII classes (`(?-u)`): the shapes are ASCII, and Unicode word boundaries would make the
    // compiled automata (resident for the gateway's life) several times larger.
    .filter_map(|(re, with)| Regex::new(&format!("(?-u){re}")).ok().map(|r| (r, with)))
    .collect()
});

pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: &[String]) -> Self {
        let mut secrets: Vec<String> = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        for (re, with) in SHAPES.iter() {
            if re.is_match(out.as_bytes()) {
                let replaced = re.replace_all(out.as_bytes(), with.as_bytes());
                out = Cow::Owned(String::from_utf8_lossy(&replaced).into_owned());
            }
        }
        out
    }
}

/// A writer factory whose writers mask each line before passing it on. tracing-subscriber
/// formats an event into one buffer and writes it with one `write_all`, so a line is never
/// split across two writes (a secret cannot straddle them).
#[derive(Clone)]
pub struct Redacting<M> {
    inner: M,
    redactor: Arc<Redactor>,
}

impl<M> Redacting<M> {
    pub fn new(inner: M, redactor: Arc<Redactor>) -> Self {
        Self { inner, redactor }
    }
}

pub struct RedactingWriter<'a, W> {
    inner: W,
    redactor: &'a Redactor,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            redactor: &self.redactor,
        }
    }
}

impl<W: Write> Write for RedactingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_token_shapes_are_masked() {
        let r = Redactor::new(&["hunter2-secret".into()]);
        let cases = [
            (
                "GET https://api.telegram.org/bot123456789:AAH-abcdefghijklmnopqrstuvwxyz012/getUpdates failed",
                "GET https://api.telegram.org/bot***/getUpdates failed",
            ),
            (
                "authorization: Bearer eyJhbGciOi.JIUzI1NiJ9xx",
                "authorization: Bearer ***",
            ),
            (
                "Authorization: Bot MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ",
                "Authorization: Bot ***",
            ),
            (
                "key sk-ant-api03-abcdefghijklmnop rejected",
                "key sk-*** rejected",
            ),
            (
                r#"{"error":"bad","access_token":"ya29.a0AfH6SMBx"}"#,
                r#"{"error":"bad","access_token":"***"}"#,
            ),
            ("the password is hunter2-secret", "the password is ***"),
            ("a bot answered politely", "a bot answered politely"),
        ];
        for (line, want) in cases {
            assert_eq!(r.redact(line), want, "{line}");
        }
    }
}
