//! The systemd **user** unit `switchboard gateway install` writes, and the `systemctl --user`
//! calls that drive it.
//!
//! A user unit needs no root and runs as the person who owns the state. It restarts the gateway
//! when it fails (not when it is stopped), and reads the `${VAR}`s the config uses from an
//! environment file beside the state (mode 0600), since a service does not inherit the shell's
//! exports.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const UNIT: &str = "switchboard.service";

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "the systemd user manager is not reachable (`systemctl --user {args}`: {detail}).\n\
         On a server or over SSH: `sudo loginctl enable-linger $USER`, then log in again (or set \
         XDG_RUNTIME_DIR=/run/user/$(id -u)); in a container without systemd, run \
         `switchboard gateway` under your own supervisor instead"
    )]
    NoUserManager { args: String, detail: String },
    #[error("`systemctl --user {args}` failed: {detail}")]
    Failed { args: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Where user units live: `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn unit_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("systemd/user")
}

pub fn unit_path() -> PathBuf {
    unit_dir().join(UNIT)
}

/// The environment file for the config's `${VAR}`s.
pub fn env_file(state_dir: &Path) -> PathBuf {
    state_dir.join("gateway.env")
}

/// The unit's text. Paths are absolute so the service does not depend on a working directory.
pub fn unit_text(exe: &Path, config: &Path, env_file: Option<&Path>) -> String {
    let mut s = String::from(
        "# Written by `switchboard gateway install`; `switchboard gateway uninstall` removes it.\n\
         [Unit]\n\
         Description=switchboard: LLM agents on Telegram and Discord\n\
         Documentation=man:switchboard(1)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n",
    );
    s.push_str(&format!(
        "ExecStart={} gateway --config {}\n",
        quote(&exe.display().to_string()),
        quote(&config.display().to_string())
    ));
    if let Some(env) = env_file {
        // `-`: a missing file is not an error (the variables may all have defaults).
        s.push_str(&format!(
            "EnvironmentFile=-{}\n",
            quote(&env.display().to_string())
        ));
    }
    s.push_str(
        "Restart=on-failure\n\
         RestartSec=5\n\
         # SIGTERM is a graceful stop: turns in progress finish, the rest resumes at the next start.\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
    );
    s
}

/// systemd's quoting for a word of ExecStart= and similar settings.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,".contains(c))
    {
        return word.to_string();
    }
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    format!("\"{escaped}\"")
}

/// The environment file's text: each variable that is set now, as `NAME="value"`.
pub fn env_text(vars: &[(String, String)]) -> String {
    let mut s = String::from(
        "# Variables the switchboard config refers to, captured by `switchboard gateway install`.\n",
    );
    for (name, value) in vars {
        let v = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        s.push_str(&format!("{name}=\"{v}\"\n"));
    }
    s
}

/// Runs `systemctl --user ARGS`; its stdout on success.
pub fn systemctl(args: &[&str]) -> Result<String, SystemdError> {
    let joined = args.join(" ");
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .map_err(|e| SystemdError::NoUserManager {
            args: joined.clone(),
            detail: if e.kind() == std::io::ErrorKind::NotFound {
                "systemctl is not installed".into()
            } else {
                e.to_string()
            },
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        return Ok(stdout);
    }
    let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let detail = if detail.is_empty() { stdout } else { detail };
    let no_manager = [
        "Failed to connect to bus",
        "No medium found",
        "XDG_RUNTIME_DIR",
    ]
    .iter()
    .any(|m| detail.contains(m));
    Err(if no_manager {
        SystemdError::NoUserManager {
            args: joined,
            detail,
        }
    } else {
        SystemdError::Failed {
            args: joined,
            detail,
        }
    })
}

/// Whether the unit is installed (its file exists).
pub fn installed() -> bool {
    unit_path().is_file()
}

/// Whether systemd runs the unit now.
pub fn active() -> bool {
    matches!(systemctl(&["is-active", UNIT]).as_deref(), Ok("active"))
}

/// Writes `text` to `path` with mode 0600 (it may hold secrets).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_absolute_binary_on_the_absolute_config_and_restarts_on_failure() {
        let u = unit_text(
            Path::new("/opt/sb/switchboard"),
            Path::new("/home/a b/config.json5"),
            Some(Path::new("/home/a b/.switchboard/gateway.env")),
        );
        assert!(u.contains(
            "ExecStart=/opt/sb/switchboard gateway --config \"/home/a b/config.json5\"\n"
        ));
        assert!(u.contains("EnvironmentFile=-\"/home/a b/.switchboard/gateway.env\"\n"));
        assert!(u.contains("Restart=on-failure\n"));
        assert!(u.contains("WantedBy=default.target\n"));
    }

    #[test]
    fn environment_values_are_quoted() {
        let t = env_text(&[("A".into(), "x\"y\\z".into())]);
        assert!(t.ends_with("A=\"x\\\"y\\\\z\"\n"), "{t}");
    }
}
