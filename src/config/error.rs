use std::fmt;

/// Why a config could not be used. Displayed as `file:line:column: key: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", describe_io(path, source))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: syntax error: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Nothing but whitespace and comments: say so, rather than fail on a missing key at 1:1.
    #[error(
        "{file}: the config file is empty (only whitespace or comments); it must hold an object `{{ ... }}` — start from config.example.json5"
    )]
    Empty { file: String },
    #[error("{}", Invalid { file, line: *line, column: *column, key, message, suggestion })]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
        suggestion: Option<String>,
    },
    /// A `config get`/`set` key that does not exist.
    #[error("{0}")]
    Key(String),
}

fn describe_io(path: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "no config file at {path}. Copy config.example.json5 there, or pass --config PATH (or set SWITCHBOARD_CONFIG)"
        )
    } else {
        format!("cannot read {path}: {e}")
    }
}

struct Invalid<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    key: &'a str,
    message: &'a str,
    suggestion: &'a Option<String>,
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.key, self.message
        )?;
        if let Some(s) = self.suggestion {
            write!(f, " — did you mean `{s}`?")?;
        }
        Ok(())
    }
}
