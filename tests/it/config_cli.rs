use crate::support::gateway::{config_text, free_port, run_cli};
use crate::support::*;

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("config.json5");
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn validate_points_at_the_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "{\n  gateway: {\n    prot: 18789,\n  },\n}\n");
    let out = run_cli(&p, &["config", "validate"], "").await;
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "{}:3:5: gateway.prot: unknown key `prot`",
            p.display()
        )),
        "{e}"
    );
    assert!(e.contains("did you mean `port`?"), "{e}");

    let p = write(&dir, "{\n  workers: { maxConcurrent: \"four\" },\n}\n");
    let out = run_cli(&p, &["config", "validate"], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(":2:14: workers.maxConcurrent:"),
        "{}",
        stderr(&out)
    );

    // Nothing starts on an invalid config.
    let out = run_cli(&p, &["gateway"], "").await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn example_config_validates_with_no_environment() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.json5");
    let out = run_cli(&example, &["config", "validate"], "").await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn set_keeps_comments_and_refuses_invalid_values() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("http://127.0.0.1:9", 18789, &dir.path().join("state"), "");
    let p = write(&dir, &text);
    let out = run_cli(&p, &["config", "set", "gateway.port", "19999"], "").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = std::fs::read_to_string(&p).unwrap();
    assert!(after.starts_with("// test config\n"), "{after}");
    assert!(after.contains("gateway: { port: 19999 }"), "{after}");
    assert_eq!(after.lines().count(), text.lines().count());

    let out = run_cli(&p, &["config", "set", "gateway.bind", "nowhere"], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("gateway.bind"), "{}", stderr(&out));
    let out = run_cli(&p, &["config", "set", "gateway.prot", "1"], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `port`?"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        after,
        "refused sets change nothing"
    );

    let out = run_cli(&p, &["config", "get", "gateway.port"], "").await;
    assert_eq!(stdout(&out).trim(), "19999");
    let out = run_cli(&p, &["config", "get", "providers.anthropic.apiKey"], "").await;
    assert_eq!(stdout(&out).trim(), "***");
    let out = run_cli(&p, &["config", "get"], "").await;
    assert!(!stdout(&out).contains("SECRET"), "secrets never printed");
}

#[tokio::test]
async fn lan_bind_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        "http://127.0.0.1:9",
        free_port(),
        &dir.path().join("state"),
        "",
    )
    .replace("gateway: {", "gateway: { bind: \"lan\",");
    let p = write(&dir, &text);
    let out = run_cli(&p, &["gateway"], "").await;
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("refusing to listen on lan without a gateway token"),
        "{e}"
    );
    assert!(e.contains("config set gateway.token"), "{e}");
}

#[tokio::test]
async fn cli_says_what_it_tried_when_the_gateway_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text("http://127.0.0.1:9", port, &dir.path().join("state"), "");
    let p = write(&dir, &text);
    for args in [
        &["gateway", "status"][..],
        &["chat"],
        &["tasks", "list"],
        &["send", "--to", "local:x", "hi"],
    ] {
        let out = run_cli(&p, args, "hello\n").await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let e = stderr(&out);
        assert!(
            e.contains(&format!(
                "cannot reach the gateway at http://127.0.0.1:{port}"
            )),
            "{e}"
        );
        assert!(e.contains("switchboard gateway"), "{e}");
        assert!(e.contains("config set gateway.bind lan"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_requires_the_token_when_one_is_set() {
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&model.url, port, &dir.path().join("state"), "")
        .replace("gateway: {", "gateway: { token: \"tok-SECRET-123\",");
    let gw = TestGateway::start_in(dir, port, &text).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v1/status", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{}/health", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The CLI takes the token from the config.
    let out = gw.cli(&["gateway", "status"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("listening: 127.0.0.1:{port}")));
    let out = gw.cli_stdin(&["chat"], "hi\n").await;
    assert_eq!(stdout(&out).trim(), "echo: hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_health_and_problems() {
    let model = FakeModel::start().await;
    let gw = TestGateway::start(&model, "").await;
    let out = gw.cli(&["doctor"]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("✓ config:"), "{text}");
    assert!(text.contains("✓ gateway: up at"), "{text}");
    assert!(text.contains("✓ cron: 0 jobs"), "{text}");
    assert!(text.contains("✓ provider anthropic: API key set"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&model.url, free_port(), &dir.path().join("state"), "")
        .replace("gateway: {", "gateway: { bind: \"lan\",")
        .replace("apiKey: \"sk-ant-test-SECRET\", ", "");
    let p = write(&dir, &text);
    let out = run_cli(&p, &["doctor"], "").await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("✗ gateway bind: lan without gateway.token"),
        "{text}"
    );
    assert!(text.contains("✗ provider anthropic: no API key"), "{text}");
    assert!(
        text.contains("! gateway: cannot reach the gateway"),
        "{text}"
    );
}

#[tokio::test]
async fn completions_load_in_a_real_bash_and_the_manual_page_renders() {
    let dir = tempfile::tempdir().unwrap();
    // Neither needs a config: they describe the command line itself.
    let p = dir.path().join("absent.json5");
    let bash = run_cli(&p, &["completions", "bash"], "").await;
    assert!(bash.status.success(), "{}", stderr(&bash));
    let script = dir.path().join("switchboard.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // Bash itself loads the script and offers the subcommands for `switchboard he<TAB>`.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            r#"source '{}' && complete -p switchboard && COMP_WORDS=(switchboard he) COMP_CWORD=1 COMP_LINE='switchboard he' COMP_POINT=14 && _switchboard switchboard he switchboard && printf '%s\n' "${{COMPREPLY[@]}}""#,
            script.display()
        ))
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{offered}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(offered.contains("-F _switchboard switchboard"), "{offered}");
    assert!(offered.lines().any(|l| l == "heartbeat"), "{offered}");
    assert!(offered.lines().any(|l| l == "help"), "{offered}");

    for (shell, marker) in [
        ("zsh", "#compdef switchboard"),
        ("fish", "complete -c switchboard"),
    ] {
        let out = run_cli(&p, &["completions", shell], "").await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(marker), "{shell}: {}", stdout(&out));
    }
    let bad = run_cli(&p, &["completions", "tcsh"], "").await;
    assert_eq!(bad.status.code(), Some(2));

    let man = run_cli(&p, &["man"], "").await;
    assert!(man.status.success(), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH switchboard"),
        "{page}"
    );
    for sub in ["gateway", "usage", "heartbeat", "cron"] {
        assert!(page.contains(sub), "the page lists `{sub}`");
    }
}
