//! `exec`: allow-listed programs, run directly (no shell) with a timeout and truncated output,
//! confined by bubblewrap when it is there (`tools.exec.sandbox`).
//!
//! The child never inherits our environment (it holds the channel tokens and API keys): it gets
//! PATH, HOME (the agent's workspace) and LANG, and runs in the workspace. Under bubblewrap it
//! also has no network, sees the system read-only and nothing of `/home`, `/root` or the state
//! directory but its own workspace, which it may write, and gets a private `/tmp`.

use crate::config::{ExecConfig, Sandbox};
use crate::providers::ToolSpec;
use serde_json::json;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

const OUTPUT_LIMIT: usize = 8_000;
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// System folders the sandbox shows read-only (those that exist).
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt",
];

pub fn spec(cfg: &ExecConfig) -> ToolSpec {
    super::builtin::spec(
        "exec",
        &format!(
            "Run a command (no shell) in your workspace. Allowed programs: {}.",
            cfg.allow.join(", ")
        ),
        json!({ "type": "object", "properties": { "command": { "type": "string" } }, "required": ["command"] }),
    )
}

/// How `exec` runs with this config, for `doctor` and the tool itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confinement {
    Bwrap,
    None,
    /// `sandbox: "bwrap"` without a working bubblewrap: exec refuses to run.
    Unavailable(String),
}

impl Confinement {
    pub fn of(cfg: &ExecConfig) -> Confinement {
        match (cfg.sandbox, bwrap_works()) {
            (Sandbox::None, _) => Confinement::None,
            (_, Ok(())) => Confinement::Bwrap,
            (Sandbox::Auto, Err(_)) => Confinement::None,
            (Sandbox::Bwrap, Err(e)) => Confinement::Unavailable(e.clone()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Confinement::Bwrap => {
                "bubblewrap (no network, read-only system, writable workspace, private /tmp)".into()
            }
            Confinement::None => "none (programs run with the gateway's rights)".into(),
            Confinement::Unavailable(e) => format!("bubblewrap required but unusable: {e}"),
        }
    }
}

/// Whether `bwrap` is installed and can create its namespaces here (checked once).
fn bwrap_works() -> &'static Result<(), String> {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    OK.get_or_init(|| {
        let out = std::process::Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--unshare-net", "--", "true"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("`bwrap` not found ({e}); install bubblewrap"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`bwrap` cannot create a sandbox here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
}

/// The bubblewrap arguments that confine a program to `workspace`.
fn bwrap_args(workspace: &Path) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    for dir in SYSTEM {
        a.extend(["--ro-bind-try".into(), (*dir).into(), (*dir).into()]);
    }
    let ws = workspace.display().to_string();
    a.extend(
        [
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--bind",
            &ws,
            &ws,
            "--chdir",
            &ws,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv",
            "PATH",
            PATH,
            "--setenv",
            "HOME",
            &ws,
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--",
        ]
        .map(String::from),
    );
    a
}

/// Runs an allow-listed program in `workspace`. `Err` is a message for the model.
pub async fn run(command: &str, cfg: &ExecConfig, workspace: &Path) -> Result<String, String> {
    let argv = shell_words::split(command).map_err(|e| format!("cannot parse command: {e}"))?;
    let Some(program) = argv.first() else {
        return Err("empty command".into());
    };
    if !cfg.allow.iter().any(|a| a == program) {
        return Err(format!(
            "`{program}` is not allowed (allowed: {})",
            cfg.allow.join(", ")
        ));
    }
    let mut cmd = match Confinement::of(cfg) {
        Confinement::Unavailable(e) => return Err(format!("exec is disabled: {e}")),
        Confinement::Bwrap => {
            let mut c = tokio::process::Command::new("bwrap");
            c.args(bwrap_args(workspace)).args(&argv);
            c
        }
        Confinement::None => {
            let mut c = tokio::process::Command::new(program);
            c.args(&argv[1..])
                .env_clear()
                .env("PATH", PATH)
                .env("HOME", workspace)
                .env("LANG", "C.UTF-8")
                .current_dir(workspace);
            c
        }
    };
    let child = cmd
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(cfg.timeout_seconds), child)
        .await
        .map_err(|_| format!("timed out after {}s", cfg.timeout_seconds))?
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.is_empty() {
        text.push_str("\n[stderr]\n");
        text.push_str(&err);
    }
    if text.len() > OUTPUT_LIMIT {
        text.truncate(text.floor_char_boundary(OUTPUT_LIMIT));
        text.push_str("\n[output truncated]");
    }
    let code = out.status.code().map_or("signal".into(), |c| c.to_string());
    Ok(super::untrusted(
        &format!("exec {program}"),
        &format!("exit {code}\n{text}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(sandbox: Sandbox) -> ExecConfig {
        ExecConfig {
            enabled: true,
            allow: vec!["echo".into(), "sleep".into(), "sh".into(), "cat".into()],
            timeout_seconds: 2,
            sandbox,
        }
    }

    #[tokio::test]
    async fn exec_runs_only_allowed_programs_and_truncates() {
        let ws = tempfile::tempdir().unwrap();
        let cfg = cfg(Sandbox::None);
        let out = run("echo hello 'two words'", &cfg, ws.path())
            .await
            .unwrap();
        assert!(out.contains("exit 0\nhello two words"), "{out}");
        let err = run("rm -rf /tmp/x", &cfg, ws.path()).await.unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        let err = run("sleep 5", &cfg, ws.path()).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        let out = run(&format!("echo {}", "x".repeat(9000)), &cfg, ws.path())
            .await
            .unwrap();
        assert!(out.contains("[output truncated]"), "{out}");
    }

    #[tokio::test]
    async fn exec_never_sees_our_environment_and_runs_in_the_workspace() {
        // SAFETY: set before any thread of this test reads the environment.
        unsafe { std::env::set_var("SWITCHBOARD_TEST_SECRET", "hunter2") };
        let ws = tempfile::tempdir().unwrap();
        let out = run("sh -c 'env; pwd'", &cfg(Sandbox::None), ws.path())
            .await
            .unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        let real = ws.path().canonicalize().unwrap();
        assert!(out.contains(&real.display().to_string()), "{out}");
    }
}
