//! Configuration: the JSON5 file a user writes (see SPEC.md), loaded strictly.
//!
//! - `types`: the keys and their defaults (`tools`: the tools, MCP and web sections).
//! - `json5`: the strict JSON5 parser that keeps every key's and value's span.
//! - `source`: the located JSON value, `${VAR}` expansion, error locations and suggestions.
//! - `validate`: cross-references and ranges.
//! - `edit`: `config get`/`set`, which keeps the file's comments and layout.

mod edit;
mod error;
mod json5;
mod ops;
mod source;
mod speech;
mod tools;
mod types;
mod validate;

pub use edit::{get, secrets, set, set_all};
pub use error::ConfigError;
pub use types::*;

use std::path::{Path, PathBuf};

/// The config file to use: `--config`, else `SWITCHBOARD_CONFIG`, else `~/.switchboard/config.json5`.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("SWITCHBOARD_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    home().join(".switchboard").join("config.json5")
}

fn home() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("."))
}

/// Parses JSON5 text (another program's config, e.g. OpenClaw's) into JSON, with errors that
/// name the file, line and column.
pub fn parse_json5(path: &Path, text: &str) -> Result<serde_json::Value, ConfigError> {
    Ok(source::Located::parse(path, text)?.value)
}

/// Expands a leading `~` to the home directory.
pub fn expand_home(p: &str) -> PathBuf {
    if p == "~" {
        home()
    } else if let Some(rest) = p.strip_prefix("~/") {
        home().join(rest)
    } else {
        PathBuf::from(p)
    }
}

/// Reads a config file as UTF-8, saying where the first invalid byte is when it is not.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = String::from_utf8_lossy(&bytes[..valid]);
        let (line, column) = json5::line_col(&before, before.len());
        ConfigError::Syntax {
            file: path.display().to_string(),
            line,
            column,
            message: format!(
                "invalid UTF-8 (byte 0x{:02x}); the config must be UTF-8 text",
                bytes.get(valid).copied().unwrap_or(0)
            ),
        }
    })
}

impl Config {
    /// Reads, expands and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_text(path)?;
        Self::from_text(path, &text)
    }

    /// Parses `text` as if it were the file at `path` (used by `config set` before writing).
    pub fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        source::Located::parse(path, text)?.into_config(path)
    }

    /// The environment variables the file at `path` refers to (`${VAR}`, `${VAR:-default}`) in its
    /// values (not its comments), each once, in order: what a service unit must pass on.
    pub fn env_vars(path: &Path) -> Result<Vec<String>, ConfigError> {
        let text = read_text(path)?;
        let located = source::Located::parse(path, &text)?;
        let names = std::cell::RefCell::new(Vec::<String>::new());
        let mut value = located.value;
        let _ = source::expand_env(&mut value, String::new(), &|name| {
            let mut n = names.borrow_mut();
            if !n.iter().any(|x| x == name) {
                n.push(name.to_string());
            }
            Some("x".into())
        });
        Ok(names.into_inner())
    }

    pub fn state_dir(&self) -> PathBuf {
        expand_home(&self.state_dir)
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("switchboard.db")
    }

    /// The speech model `voice.model` names: a catalogue name (`base.en`) is the file of that name
    /// in `<stateDir>/models/` (with what to fetch it by); anything else is a path.
    pub fn voice_model(&self) -> (PathBuf, Option<&'static crate::voice::models::Known>) {
        let m = self.voice.model.trim();
        let is_name = !m.contains(['/', '\\']) && !m.starts_with('~');
        match crate::voice::models::lookup(m) {
            Ok(known) if is_name => (
                self.state_dir().join("models").join(known.file_name()),
                Some(known),
            ),
            _ => (expand_home(m), None),
        }
    }

    /// Whether replies in chats of `channel` are streamed (`channels.NAME.streaming`).
    pub fn streams(&self, channel: &str) -> bool {
        match channel {
            "telegram" => self.channels.telegram.as_ref().is_some_and(|t| t.streaming),
            "discord" => self.channels.discord.as_ref().is_some_and(|d| d.streaming),
            // The control room's chat always streams: a browser has no edit rate limit.
            "web" => true,
            _ => false,
        }
    }

    /// The configured time zone, else the system's, else UTC.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .or(iana_time_zone::get_timezone().ok().as_deref())
            .and_then(|t| t.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// The coordinator agent: the one marked `coordinator`, else the only (or first) agent.
    pub fn coordinator(&self) -> &str {
        self.agents
            .iter()
            .find(|(_, a)| a.coordinator)
            .or_else(|| self.agents.iter().next())
            .map(|(n, _)| n.as_str())
            .unwrap_or("jarvis")
    }

    /// The folders agent `agent` takes skills from, most specific first (an earlier one wins on a
    /// name both hold): its workspace's `skills/`, then `skills.dirs`, then `<stateDir>/skills`.
    pub fn skill_roots(&self, agent: &str) -> Vec<PathBuf> {
        let mut roots = vec![self.workspace(agent).join("skills")];
        roots.extend(self.skills.dirs.iter().map(|d| expand_home(d)));
        roots.push(self.state_dir().join("skills"));
        roots
    }

    pub fn workspace(&self, agent: &str) -> PathBuf {
        match self.agents.get(agent).and_then(|a| a.workspace.as_deref()) {
            Some(w) => expand_home(w),
            None => self.state_dir().join("agents").join(agent),
        }
    }

    /// The address the HTTP API listens on (and the CLI connects to).
    pub fn listen_ip(&self) -> std::net::IpAddr {
        use std::net::{IpAddr, Ipv4Addr};
        match self.gateway.bind.as_str() {
            "loopback" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            "lan" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ip => ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config.example.json5");

    #[test]
    fn example_config_is_valid_without_any_environment() {
        let c = Config::from_text(Path::new("config.example.json5"), EXAMPLE).unwrap();
        assert_eq!(c.coordinator(), "jarvis");
        assert_eq!(c.gateway.port, 18789);
        assert!(c.gateway.token.is_none());
        assert!(c.channels.telegram.as_ref().unwrap().token.is_none());
    }

    fn err(text: &str) -> String {
        Config::from_text(Path::new("c.json5"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn misspelt_key_points_at_line_and_suggests() {
        let e = err("{\n  gateway: {\n    prot: 1,\n  },\n}");
        assert!(
            e.starts_with("c.json5:3:5: gateway.prot: unknown key `prot`"),
            "{e}"
        );
        assert!(e.contains("did you mean `port`?"), "{e}");
    }

    #[test]
    fn wrong_type_and_bad_enum_are_located() {
        let e = err("{\n gateway: { port: \"x\" } }");
        assert!(e.starts_with("c.json5:2:13: gateway.port:"), "{e}");
        let e = err("{ channels: {\n telegram: { dmPolicy: \"pairng\" } } }");
        assert!(
            e.starts_with("c.json5:2:14: channels.telegram.dmPolicy:"),
            "{e}"
        );
        assert!(e.contains("did you mean `pairing`?"), "{e}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = err("{\n  a: 1\n  b: }");
        assert!(e.starts_with("c.json5:3:"), "{e}");
        assert!(e.contains("syntax error"), "{e}");
    }

    #[test]
    fn cross_references_are_checked() {
        let e = err("{ agents: { jarvis: { coordinator: true, model: \"nope\" } } }");
        assert!(e.contains("agents.jarvis.model"), "{e}");
        let e = err(
            "{ providers: { a: {} }, models: { default: \"a/m\" },\n routing: [ { match: { channel: \"telegram\" }, agent: \"ghost\" } ] }",
        );
        assert!(e.starts_with("c.json5:2:"), "{e}");
        assert!(
            e.contains("routing[0].agent: no agent named `ghost`"),
            "{e}"
        );
        let e = err("{ timezone: \"Mars/Olympus\" }");
        assert!(e.contains("timezone"), "{e}");
    }

    #[test]
    fn a_store_url_is_sqlite_or_postgres_and_its_password_is_never_echoed() {
        let ok = |url: &str| {
            Config::from_text(
                Path::new("c.json5"),
                &format!(
                    "{{ providers: {{ a: {{}} }}, models: {{ default: \"a/m\" }}, store: {{ url: \"{url}\" }} }}"
                ),
            )
        };
        for good in [
            "sqlite",
            "postgres://bot:pw@db.internal:5432/switchboard?sslmode=require",
            "postgresql://db/switchboard",
        ] {
            if let Err(e) = ok(good) {
                panic!("{good}: {e}");
            }
        }
        for bad in [
            "mysql://bot:hunter2-pw@db/x",
            "postgres://bot:hunter2-pw@db:notaport/x",
        ] {
            let e = err(&format!(
                "{{ providers: {{ a: {{}} }}, models: {{ default: \"a/m\" }},\n store: {{ url: \"{bad}\" }} }}"
            ));
            assert!(e.starts_with("c.json5:2:"), "{e}");
            assert!(
                e.contains("store.url: must be \"sqlite\" or a PostgreSQL URL"),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn unset_variable_is_an_error_at_its_key() {
        let e = err("{\n gateway: {\n token: \"${SWITCHBOARD_TEST_SURELY_UNSET}\" } }");
        assert!(e.starts_with("c.json5:3:2: gateway.token:"), "{e}");
        assert!(
            e.contains("SWITCHBOARD_TEST_SURELY_UNSET is not set"),
            "{e}"
        );
    }

    #[test]
    fn empty_files_say_so() {
        for text in ["", "  \n", "// nothing yet\n/* at all */"] {
            let e = err(text);
            assert!(e.contains("c.json5: the config file is empty"), "{e}");
        }
    }

    #[test]
    fn cr_only_files_are_located_right() {
        let e = err("{\r  gateway: {\r    prot: 1,\r  },\r}");
        assert!(e.starts_with("c.json5:3:5: gateway.prot"), "{e}");
        let e = err("{\r  a: 1\r  b: 2\r}");
        assert!(e.starts_with("c.json5:3:3: syntax error"), "{e}");
    }

    #[test]
    fn bad_bytes_and_huge_numbers_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json5");
        std::fs::write(&path, b"{\n  gateway: { token: \"\xff\xfe\" } }").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(
            e.ends_with(
                ":2:22: syntax error: invalid UTF-8 (byte 0xff); the config must be UTF-8 text"
            ),
            "{e}"
        );
        let e = err("{ gateway: { port: 1e400 } }");
        assert!(e.contains("gateway.port") || e.contains("infinite"), "{e}");
        let e = err("{ gateway: { port: 99999999999999999999999999 } }");
        assert!(
            e.starts_with("c.json5:1:14: gateway.port: invalid type"),
            "{e}"
        );
        let e = err("{ workers: { maxConcurrent: -1e30 } }");
        assert!(e.contains("workers.maxConcurrent"), "{e}");
    }

    #[test]
    fn json5_the_node_gateway_accepts_loads() {
        let c = Config::from_text(
            Path::new("c.json5"),
            "{ providers: { p: {} }, models: { default: \"p/m\" }, gateway: { port: 18790., }, workers: { maxConcurrent: .2e1, timeoutSeconds: +0x3C },\r\n 'timezone': 'Europe/\\\nBerlin' }",
        )
        .unwrap();
        assert_eq!(c.gateway.port, 18790);
        assert_eq!(c.workers.max_concurrent, 2);
        assert_eq!(c.timezone.as_deref(), Some("Europe/Berlin"));
    }
}
