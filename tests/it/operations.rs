//! Running it for months: the systemd user unit (against a fake `systemctl` that records its
//! arguments), stopping and starting a gateway by hand, daily log files with redaction, backup
//! and restore, `doctor --fix` after a config change, `doctor --online`, and `doctor` from
//! another network namespace.

use crate::support::gateway::{BIN, config_text, count, free_port, run_cli_env};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fake `systemctl` on PATH: appends its arguments to `calls`; `fail` makes every call fail
/// the way a missing user manager does.
fn fake_systemctl(dir: &Path, fail: bool) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("systemctl.calls");
    let body = if fail {
        "echo 'Failed to connect to bus: No medium found' >&2; exit 1".to_string()
    } else {
        "case \"$*\" in *is-active*) echo inactive; exit 3;; esac; exit 0".to_string()
    };
    let script = format!("#!/bin/sh\necho \"$*\" >> '{}'\n{body}\n", calls.display());
    let path = bin.join("systemctl");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_install_writes_a_user_unit_and_enables_it_through_systemctl() {
    let dir = tempfile::tempdir().unwrap();
    let model = FakeModel::start().await;
    let text = config_text(
        &model.url,
        free_port(),
        &dir.path().join("state"),
        r#"channels: { telegram: { token: "${SB_TEST_TG_TOKEN:-}" } }, owner: "${SB_TEST_UNSET_OWNER:-}","#,
    );
    let config = dir.path().join("config.json5");
    std::fs::write(&config, text).unwrap();
    let bin = fake_systemctl(dir.path(), false);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let xdg = dir.path().join("xdg");
    let env = |extra: &'static [(&'static str, &'static str)]| {
        let mut v: Vec<(String, PathBuf)> = vec![
            ("PATH".into(), PathBuf::from(&path)),
            ("XDG_CONFIG_HOME".into(), xdg.clone()),
        ];
        v.extend(
            extra
                .iter()
                .map(|(k, val)| (k.to_string(), PathBuf::from(val))),
        );
        v
    };
    let run = |args: &'static [&'static str], env: Vec<(String, PathBuf)>| {
        let config = config.clone();
        async move {
            let e: Vec<(&str, &Path)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_path())).collect();
            run_cli_env(&config, args, "", &e).await
        }
    };

    // --print: the unit on stdout, nothing written, systemctl not called.
    let out = run(&["gateway", "install", "--print"], env(&[])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let unit = stdout(&out);
    let exe = std::fs::canonicalize(BIN).unwrap();
    let cfg = std::fs::canonicalize(&config).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={} gateway --config {}\n",
            exe.display(),
            cfg.display()
        )),
        "{unit}"
    );
    assert!(unit.contains("Restart=on-failure\n"), "{unit}");
    assert!(unit.contains("WantedBy=default.target\n"), "{unit}");
    let env_file = dir.path().join("state/gateway.env");
    assert!(
        unit.contains(&format!("EnvironmentFile=-{}\n", env_file.display())),
        "the config uses ${{VAR}}s, so the unit reads them from a file: {unit}"
    );
    assert!(!xdg.exists(), "--print writes nothing");
    assert!(!dir.path().join("systemctl.calls").exists());

    // install: unit and environment file written, the user manager reloaded and the unit enabled.
    let out = run(
        &["gateway", "install"],
        env(&[("SB_TEST_TG_TOKEN", "123456:SECRET-from-env")]),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let unit_path = xdg.join("systemd/user/switchboard.service");
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), unit);
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env_text.contains("SB_TEST_TG_TOKEN=\"123456:SECRET-from-env\"\n"),
        "{env_text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        stdout(&out).contains("SB_TEST_UNSET_OWNER"),
        "unset variables are named: {}",
        stdout(&out)
    );
    assert!(
        !stdout(&out).contains("SECRET-from-env"),
        "{}",
        stdout(&out)
    );
    let calls = std::fs::read_to_string(dir.path().join("systemctl.calls")).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "--user daemon-reload",
            "--user enable --now switchboard.service"
        ]
    );

    // uninstall: disabled and stopped, the file removed, the manager reloaded.
    let out = run(&["gateway", "uninstall"], env(&[])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!unit_path.exists());
    let calls = std::fs::read_to_string(dir.path().join("systemctl.calls")).unwrap();
    assert_eq!(
        calls.lines().skip(2).collect::<Vec<_>>(),
        [
            "--user disable --now switchboard.service",
            "--user daemon-reload"
        ]
    );

    // No user manager (a server without lingering, a container): said, with the fix.
    std::fs::remove_file(dir.path().join("systemctl.calls")).unwrap();
    fake_systemctl(dir.path(), true);
    let out = run(&["gateway", "install"], env(&[])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("loginctl enable-linger"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_stop_and_start_work_on_a_gateway_started_by_hand() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    assert_eq!(gw.chat("c", "hi").await, "echo: hi");
    let pid = gw.pid().unwrap();
    assert!(
        gw.dir.path().join("state/gateway.pid").exists(),
        "the gateway records its pid"
    );
    let out = gw.cli(&["gateway", "stop"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("pid {pid}")),
        "{}",
        stdout(&out)
    );
    for _ in 0..100 {
        if !gw.running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!gw.running(), "the gateway exited");
    assert!(
        gw.log().contains("shutting down"),
        "a graceful stop: {}",
        gw.log()
    );
    assert!(!gw.dir.path().join("state/gateway.pid").exists());

    // start without a unit: in the background, answering when the command returns.
    let out = gw.cli(&["gateway", "start"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(gw.chat("c", "back?").await, "echo: back?");
    let out = gw.cli(&["gateway", "restart"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(gw.chat("c", "again?").await, "echo: again?");
    let out = gw.cli(&["gateway", "stop"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gw.cli(&["gateway", "stop"]).await;
    assert!(
        stdout(&out).contains("no gateway is running"),
        "{}",
        stdout(&out)
    );
}

fn log_files(gw: &TestGateway) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(gw.dir.path().join("state/logs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("switchboard."))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_go_to_daily_files_by_the_clock_and_never_hold_a_token() {
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Telegram on a port where nothing listens: every Bot API call fails, with the token in its URL.
    let dead = free_port();
    let text = config_text(
        &model.url,
        port,
        &dir.path().join("state"),
        &format!(
            r#"channels: {{ telegram: {{ token: "987654321:AAH-SECRET-tg-token-abcdefghij", apiUrl: "http://127.0.0.1:{dead}" }} }},
               logging: {{ keepDays: 1 }},"#
        ),
    );
    std::fs::write(dir.path().join("clock"), "2026-03-01T23:59:00Z").unwrap();
    let gw = TestGateway::start_in(dir, port, &text).await;
    assert_eq!(gw.chat("dayone", "first").await, "echo: first");
    // The Telegram channel has failed at least once (and logged it).
    for _ in 0..200 {
        let out = gw.cli(&["gateway", "status", "--json"]).await;
        if stdout(&out).contains("retrying") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.set_clock("2026-03-02T00:00:30Z");
    assert_eq!(gw.chat("daytwo", "second").await, "echo: second");
    let day = |name: &str| {
        std::fs::read_to_string(gw.dir.path().join("state/logs").join(name)).unwrap_or_default()
    };
    // Lines reach the files through the writer thread: wait (bounded) for the turn's lines.
    for _ in 0..100 {
        if day("switchboard.2026-03-02.log").contains("chat=local:daytwo") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = log_files(&gw);
    assert_eq!(
        files,
        ["switchboard.2026-03-01.log", "switchboard.2026-03-02.log"],
        "one file a day, dated by the clock in the config's zone"
    );
    assert!(
        day(&files[0]).contains("chat=local:dayone"),
        "{}",
        day(&files[0])
    );
    assert!(!day(&files[0]).contains("chat=local:daytwo"));
    assert!(
        day(&files[1]).contains("chat=local:daytwo"),
        "{}",
        day(&files[1])
    );
    assert!(
        day(&files[1]).contains("session="),
        "turn lines carry the session"
    );

    // `logs` reads them, filtered.
    let out = gw.cli(&["logs", "--grep", "chat=local:daytwo"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout(&out);
    assert!(
        !lines.is_empty() && lines.lines().all(|l| l.contains("chat=local:daytwo")),
        "{lines}"
    );
    let out = gw.cli(&["logs", "--level", "warn", "--json"]).await;
    let warn = stdout(&out);
    assert!(!warn.is_empty(), "the failing Telegram calls are warnings");
    for l in warn.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["level"] == "WARN" || v["level"] == "ERROR", "{l}");
    }
    let out = gw.cli(&["logs", "--since", "2026-03-02"]).await;
    assert!(!stdout(&out).contains("chat=local:dayone"));
    assert_eq!(
        gw.cli(&["logs", "--since", "last tuesday"])
            .await
            .status
            .code(),
        Some(2)
    );

    // The token: in no file, not on stderr, not in `logs` output.
    for f in log_files(&gw) {
        assert!(!day(&f).contains("SECRET-tg-token"), "{f}: {}", day(&f));
    }
    assert!(!gw.log().contains("SECRET-tg-token"), "{}", gw.log());
    assert!(!stdout(&gw.cli(&["logs"]).await).contains("SECRET-tg-token"));

    // Files older than keepDays go.
    gw.set_clock("2026-03-04T08:00:00Z");
    assert_eq!(gw.chat("daythree", "third").await, "echo: third");
    let mut files = Vec::new();
    for _ in 0..100 {
        files = log_files(&gw);
        if files.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files, ["switchboard.2026-03-04.log"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_the_gateway_writes_restores_the_same_sessions_and_memory() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    let memory = gw.workspace("jarvis").join("MEMORY.md");
    std::fs::write(&memory, "- the boat is blue\n").unwrap();
    for i in 0..5 {
        gw.chat("c", &format!("before {i}")).await;
    }
    // Messages keep arriving while the backup runs.
    let url = gw.url.clone();
    let writer = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for i in 0..40 {
            let _ = http
                .post(format!("{url}/v1/chat"))
                .json(&serde_json::json!({ "chat": format!("busy{}", i % 4), "text": format!("during {i}") }))
                .send()
                .await;
        }
    });
    let out = gw.cli(&["backup"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    writer.await.unwrap();
    let dir = PathBuf::from(
        stdout(&out)
            .split(" to ")
            .nth(1)
            .and_then(|s| s.split(" (").next())
            .unwrap(),
    );
    let snap = dir.join("switchboard.db");
    assert_eq!(
        rusqlite::Connection::open(&snap)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    let turns_at_backup = count(&snap, "SELECT count(*) FROM turns");
    assert!(
        turns_at_backup >= 10,
        "the five exchanges before the backup are in it"
    );
    let sessions_at_backup = count(&snap, "SELECT count(*) FROM sessions");

    // Life goes on after the backup.
    gw.chat("c", "after the backup").await;
    std::fs::write(&memory, "- the boat is red\n").unwrap();

    // Refused while the gateway runs.
    let out = gw.cli(&["backup", "restore", dir.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stop it first"), "{}", stderr(&out));

    gw.stop("TERM").await;
    let out = gw.cli(&["backup", "restore", dir.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&memory).unwrap(),
        "- the boat is blue\n"
    );
    let db = gw.dir.path().join("state/switchboard.db");
    assert_eq!(count(&db, "SELECT count(*) FROM turns"), turns_at_backup);
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions"),
        sessions_at_backup
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM turns WHERE content LIKE '%after the backup%'"
        ),
        0
    );
    // What the restore replaced is kept in a backup of its own.
    let out = gw.cli(&["backup", "list", "--json"]).await;
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let reasons: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["manifest"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["backup", "restore"]);
    let saved = PathBuf::from(list[1]["path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(saved.join("agents/jarvis/MEMORY.md")).unwrap(),
        "- the boat is red\n"
    );

    // The restored state runs: the conversation continues from the backup.
    gw.restart().await;
    assert_eq!(gw.chat("c", "still here?").await, "echo: still here?");
    // This chat's request: the backup may hold busy chats' messages not yet answered, which
    // the restored gateway answers beside it.
    let history = model
        .requests()
        .iter()
        .rev()
        .map(|r| r.body.to_string())
        .find(|b| b.contains("still here?"))
        .expect("the request for \"still here?\"");
    assert!(
        history.contains("before 4"),
        "the restored session's history"
    );
    assert!(!history.contains("after the backup"));
    assert!(
        history.contains("the boat is blue"),
        "the restored memory in the prompt"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_fix_removes_what_a_removed_agent_left_behind() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    assert!(gw.chat("c", "/agent clu").await.contains("clu"));
    assert_eq!(gw.chat("c", "hello clu").await, "echo: hello clu");
    let out = gw
        .cli(&[
            "cron",
            "add",
            "0 9 * * *",
            "standup",
            "--agent",
            "clu",
            "--to",
            "local:c",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gw
        .cli(&[
            "cron",
            "add",
            "0 10 * * *",
            "jarvis stays",
            "--to",
            "local:c",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    gw.stop("TERM").await;

    // clu leaves the config.
    let text = std::fs::read_to_string(&gw.config)
        .unwrap()
        .replace(r#", clu: { model: "coding" }"#, "");
    assert!(!text.contains("clu"));
    std::fs::write(&gw.config, text).unwrap();

    let out = gw.cli(&["doctor"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let said = stdout(&out);
    assert!(
        said.contains("✗ orphaned: cron job #1 \"standup\": agent `clu` no longer exists"),
        "{said}"
    );
    assert!(
        said.contains("chat local:c's choice (/agent clu: no such agent)"),
        "{said}"
    );
    assert!(
        said.contains("open session(s): agent `clu` no longer exists"),
        "{said}"
    );
    assert!(!said.contains("jarvis stays"), "{said}");

    let out = gw.cli(&["doctor", "--fix"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("✓ fixed: removed cron job #1"),
        "{}",
        stdout(&out)
    );
    let db = gw.dir.path().join("state/switchboard.db");
    assert_eq!(count(&db, "SELECT count(*) FROM cron_jobs"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM chat_prefs"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sessions WHERE agent = 'clu' AND ended_at IS NULL"
        ),
        0
    );
    let backups = std::fs::read_dir(gw.dir.path().join("state/backups"))
        .unwrap()
        .count();
    assert_eq!(backups, 1, "a backup was taken first");
    let out = gw.cli(&["doctor"]).await;
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("✓ references"), "{}", stdout(&out));

    // The chat is Jarvis's again.
    gw.restart().await;
    gw.chat("c", "who is there?").await;
    let system = model.requests().last().unwrap().body["system"].to_string();
    assert!(system.to_lowercase().contains("jarvis"), "{system}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_online_calls_each_service_and_names_a_rejected_key_without_showing_it() {
    let (model, _tg, gw) = telegram_gateway("").await;
    let out = gw.cli(&["doctor", "--online"]).await;
    let said = stdout(&out);
    assert!(out.status.success(), "{said}\n{}", stderr(&out));
    assert!(
        said.contains("✓ telegram online: getMe: @jarvis_bot"),
        "{said}"
    );
    assert!(said.contains("✓ provider anthropic online"), "{said}");
    assert!(said.contains("✓ provider openai online"), "{said}");
    assert!(said.contains("✓ gateway listens: 127.0.0.1:"), "{said}");

    model.reject_auth("sk-ant-test-SECRET");
    let out = gw.cli(&["doctor", "--online"]).await;
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("✗ provider anthropic online"), "{said}");
    assert!(said.contains("401"), "{said}");
    assert!(
        !said.contains("sk-ant-test-SECRET") && !said.contains("SECRET-TG"),
        "{said}"
    );
}

/// `ip netns` needs root; skipped (loudly) elsewhere.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_in_another_network_namespace_says_the_loopback_gateway_is_out_of_reach() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: network namespaces need root");
        return;
    }
    let ns = format!("sbdoctor{}", std::process::id());
    let added = std::process::Command::new("ip")
        .args(["netns", "add", &ns])
        .status();
    if !added.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: `ip netns add` is not possible here");
        return;
    }
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", &ns, BIN, "--config"])
        .arg(&gw.config)
        .arg("doctor")
        .output()
        .await
        .unwrap();
    let _ = std::process::Command::new("ip")
        .args(["netns", "delete", &ns])
        .status();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("runs in another network namespace and listens only on 127.0.0.1:"),
        "{said}"
    );
    assert!(said.contains("gateway.bind lan"), "{said}");
    // From the gateway's own namespace, the same gateway is fine.
    let out = gw.cli(&["doctor"]).await;
    assert!(stdout(&out).contains("(loopback only"), "{}", stdout(&out));
}
