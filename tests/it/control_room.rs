//! The web control room in a real headless Chromium: login, the overview, a streamed web chat,
//! cron through the form, pairing, memory editing, no secret in any page or API answer, and
//! requests without the login or its CSRF token refused.

use crate::support::browser::Browser;
use crate::support::fake_model::Chunk;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::gateway::{config_text, free_port};
use crate::support::{FakeModel, Gate, Reply, TestGateway};
use std::time::Duration;

const TOKEN: &str = "web-token-SECRET-0123456789abcdef";
const SECRETS: &[&str] = &[
    TOKEN,
    "sk-ant-test-SECRET",
    "sk-oai-test-SECRET",
    "123456:SECRET-TG",
];

async fn gateway(model: &FakeModel, tg: &FakeTelegram, token: Option<&str>) -> TestGateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "pairing" }} }},
           tools: {{ exec: {{ enabled: true, allow: ["echo"], sandbox: "none" }}, approve: ["exec"] }},
           {voice}"#,
        tg.url,
        voice = crate::support::voice::whisper_model()
            .map(|m| format!(r#"voice: {{ model: "{}", maxSeconds: 60 }},"#, m.display()))
            .unwrap_or_default(),
    );
    let mut text = config_text(&model.url, port, &dir.path().join("state"), &extra);
    if let Some(t) = token {
        text = crate::support::gateway::with_token(&text, port, t);
    }
    TestGateway::start_in(dir, port, &text).await
}

/// Fails if any configured secret is in `text` (a page's source or an API answer).
fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_room_in_a_real_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = gateway(&model, &tg, Some(TOKEN)).await;
    let url = &gw.url;
    let mut sources: Vec<(String, String)> = Vec::new();

    // Login: a wrong token is refused, the right one opens the overview.
    b.goto(&format!("{url}/cron")).await;
    assert!(b.url().await.contains("/login"), "not sent to the login");
    b.screenshot("login").await;
    b.fill("#token", "not-the-token").await;
    b.click("button[type=submit]").await;
    b.wait_text("[role=alert]", "the refusal", |t| {
        t.contains("not the gateway token")
    })
    .await;
    b.fill("#token", TOKEN).await;
    b.click("button[type=submit]").await;
    b.wait_text("h1", "the cron page after login", |t| t == "Cron")
        .await;
    assert!(b.cookie("sb_session").await.is_some(), "no login cookie");

    // The overview: Telegram connected to the fake Bot API (the page refreshes itself).
    b.goto(url).await;
    b.wait_text(
        "tr[data-channel=telegram] [data-state]",
        "telegram connected",
        |t| t == "connected",
    )
    .await;
    b.screenshot("overview").await;
    sources.push(("overview".into(), b.source().await));

    // Web chat: the reply streams in while the model is still writing, then completes.
    let gate = Gate::default();
    model.on(
        Some("tell me a story"),
        Reply::Stream {
            chunks: vec![
                Chunk::Text("Once upon a time".into()),
                Chunk::Hold(gate.clone()),
                Chunk::Text(" there was a gateway. The end.".into()),
            ],
            tool: None,
        },
    );
    b.goto(&format!("{url}/chat/jarvis")).await;
    b.fill("#chat-text", "tell me a story").await;
    b.click("#chat-form button[type=submit]").await;
    let partial = b
        .wait_text(".msg.assistant.pending", "the streamed beginning", |t| {
            t.contains("Once upon a time")
        })
        .await;
    assert!(!partial.contains("The end"), "{partial}");
    b.screenshot("chat-streaming").await;
    gate.open();
    b.wait_text(".msg.assistant:not(.pending)", "the whole reply", |t| {
        t == "Once upon a time there was a gateway. The end."
    })
    .await;
    assert!(
        !b.has(".msg.assistant.pending").await,
        "a draft stayed after the reply"
    );
    b.screenshot("chat").await;
    // A file attached in the page reaches the agent (a text file, inline as data), and a voice
    // note is transcribed locally and answered like a typed message.
    let notes = gw.dir.path().join("shopping-notes.txt");
    std::fs::write(&notes, "Buy oat milk and the blue notebook.").expect("notes");
    let attach = |path: std::path::PathBuf| {
        let b = &b;
        async move {
            b.client
                .find(fantoccini::Locator::Css("#chat-file"))
                .await
                .expect("file input")
                .send_keys(&path.display().to_string())
                .await
                .expect("attach");
        }
    };
    attach(notes).await;
    b.fill("#chat-text", "what is on this list?").await;
    b.click("#chat-form button[type=submit]").await;
    b.wait_text(
        ".msg.assistant:not(.pending)",
        "the answer to the file",
        |t| t.contains("what is on this list?"),
    )
    .await;
    let last = model.requests().last().cloned().expect("a model request");
    assert!(
        last.transcript().iter().any(|t| t.contains("Buy oat milk")),
        "the file did not reach the model: {:?}",
        last.transcript()
    );
    if crate::support::voice::whisper_model().is_some() {
        attach(
            crate::support::voice::shared()
                .join("audio/s3.ogg")
                .canonicalize()
                .expect("sample"),
        )
        .await;
        b.click("#chat-form button[type=submit]").await;
        let heard = b
            .wait_text(".msg.assistant", "the transcript", |t| t.starts_with("🎙️"))
            .await;
        assert!(heard.to_lowercase().contains("shopping list"), "{heard}");
        b.wait_text(
            ".msg.assistant:not(.pending)",
            "the answer to the voice note",
            |t| t.starts_with("echo: ") && t.to_lowercase().contains("shopping list"),
        )
        .await;
        b.screenshot("chat-voice").await;
    }
    // Its own session, chat web:jarvis, with the transcript on reload.
    b.goto(&format!("{url}/chat/jarvis")).await;
    b.wait_text(".msg.assistant", "the transcript", |t| {
        t.contains("The end")
    })
    .await;
    b.goto(&format!("{url}/sessions")).await;
    b.wait_text("td", "the web session", |t| t == "web:jarvis")
        .await;
    b.screenshot("sessions").await;
    sources.push(("sessions".into(), b.source().await));
    b.click("td a[href^='/sessions/']").await;
    b.wait_text(".msg.user", "the transcript", |t| t == "tell me a story")
        .await;
    b.screenshot("session").await;

    // On a phone-sized screen the overview still reads (kept as a screenshot).
    b.client.set_window_size(390, 844).await.expect("resize");
    b.goto(url).await;
    b.wait_text("h1", "the overview", |t| t == "Overview").await;
    b.screenshot("overview-phone").await;
    b.client.set_window_size(1100, 1400).await.expect("resize");

    // Cron through the form: a bad schedule is refused beside its field; a good job runs at
    // its slot on the test clock and its run shows with the output.
    gw.set_clock("2026-06-01T07:59:30Z"); // 08:59:30 in London
    model.on(
        Some("morning check"),
        Reply::Text("All quiet this morning.".into()),
    );
    b.goto(&format!("{url}/cron")).await;
    b.fill("#schedule", "61 9 * * *").await;
    b.fill("#message", "morning check").await;
    b.fill("#target", "telegram:777").await;
    b.click("form[action='/cron'] button[type=submit]").await;
    let err = b
        .wait_text("#schedule-error", "the schedule's error", |t| !t.is_empty())
        .await;
    assert!(err.contains("61 9 * * *"), "{err}");
    assert_eq!(
        b.client
            .find(fantoccini::Locator::Css("#schedule"))
            .await
            .expect("field")
            .attr("aria-invalid")
            .await
            .expect("attr")
            .as_deref(),
        Some("true")
    );
    b.screenshot("cron-refused").await;
    assert_eq!(
        crate::support::gateway::count(
            &gw.dir.path().join("state/switchboard.db"),
            "SELECT count(*) FROM cron_jobs"
        ),
        0
    );
    b.fill("#schedule", "0 9 * * *").await;
    b.click("form[action='/cron'] button[type=submit]").await;
    b.wait_text("[role=status]", "the job added", |t| {
        t.contains("Added cron job #1")
    })
    .await;
    gw.set_clock("2026-06-01T08:00:05Z");
    tg.wait_sent(|s| {
        s.iter()
            .any(|m| m.chat_id == 777 && m.text.contains("All quiet"))
    })
    .await;
    for _ in 0..100 {
        b.goto(&format!("{url}/cron/1")).await;
        if b.source().await.contains("All quiet this morning.") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = b
        .wait_text("tr.run", "the run", |t| {
            t.contains("All quiet this morning.")
        })
        .await;
    assert!(
        run.contains("2026-06-01 09:00:00") && run.contains("ok"),
        "{run}"
    );
    b.screenshot("cron-job").await;
    sources.push(("cron".into(), b.source().await));
    // Disable, then enable again, then run now: a second run, outside the schedule.
    b.click("form[action='/cron/1/disable'] button").await;
    b.wait_text("[role=status]", "disabled", |t| t.contains("disabled"))
        .await;
    assert!(b.has("form[action='/cron/1/enable']").await);
    b.click("form[action='/cron/1/enable'] button").await;
    b.wait_text("[role=status]", "enabled", |t| t.contains("enabled"))
        .await;
    model.on(
        Some("morning check"),
        Reply::Text("Second look: still quiet.".into()),
    );
    b.click("form[action='/cron/1/run'] button").await;
    b.wait_text("[role=status]", "running", |t| t.contains("now"))
        .await;
    tg.wait_sent(|s| {
        s.iter()
            .any(|m| m.chat_id == 777 && m.text.contains("Second look"))
    })
    .await;
    // Edit: a new time, checked like `cron add`; the next run moves.
    b.goto(&format!("{url}/cron/1")).await;
    b.fill("#schedule", "30 10 * * *").await;
    b.click("form[action='/cron/1'] button[type=submit]").await;
    b.wait_text("[role=status]", "saved", |t| t.contains("Saved"))
        .await;
    let row = b
        .wait_text("tr[data-job='1']", "the new schedule", |t| {
            t.contains("30 10 * * *")
        })
        .await;
    assert!(row.contains("2026-06-01 10:30:00"), "{row}");

    // Pairing: an unknown Telegram user gets a code; approving it here lets them in.
    tg.dm(555, "hello?");
    let sent = tg.wait_sent(|s| s.iter().any(|m| m.chat_id == 555)).await;
    assert!(
        sent.iter()
            .any(|m| m.chat_id == 555 && m.text.contains("code"))
    );
    b.goto(&format!("{url}/pairing")).await;
    b.wait_text("tr[data-code]", "the request", |t| t.contains("555"))
        .await;
    b.screenshot("pairing").await;
    sources.push(("pairing".into(), b.source().await));
    b.click("tr[data-code] button.primary").await;
    b.wait_text("[role=status]", "the approval", |t| t.contains("Approved"))
        .await;
    tg.dm(555, "now can you hear me");
    tg.wait_sent(|s| {
        s.iter()
            .any(|m| m.chat_id == 555 && m.text.contains("echo: now can you hear me"))
    })
    .await;

    // Approvals: a tool the config says to ask about waits for the page's answer.
    model.on(
        Some("say hi with exec"),
        Reply::Tool {
            name: "exec".into(),
            input: serde_json::json!({ "command": "echo approved-in-the-page" }),
        },
    );
    model.on(Some("say hi with exec"), Reply::Text("It ran.".into()));
    b.goto(&format!("{url}/chat/jarvis")).await;
    b.fill("#chat-text", "say hi with exec").await;
    b.click("#chat-form button[type=submit]").await;
    b.goto(&format!("{url}/approvals")).await;
    for _ in 0..100 {
        if b.has("form[action$='/approve'] button").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.goto(&format!("{url}/approvals")).await;
    }
    let card = b
        .wait_text("section.card", "the pending approval", |t| {
            t.contains("echo approved-in-the-page")
        })
        .await;
    assert!(card.contains("exec"), "{card}");
    b.screenshot("approvals").await;
    b.click("form[action$='/approve'] button").await;
    b.wait_text("[role=status]", "the answer", |t| !t.is_empty())
        .await;
    for _ in 0..100 {
        let results = model
            .requests()
            .iter()
            .flat_map(|r| r.tool_results())
            .collect::<Vec<_>>();
        if results.iter().any(|r| r.contains("approved-in-the-page")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        model
            .requests()
            .iter()
            .flat_map(|r| r.tool_results())
            .any(|r| r.contains("approved-in-the-page")),
        "the approved tool did not run"
    );
    b.goto(&format!("{url}/approvals")).await;
    b.wait_text("td", "the decided approval", |t| t == "approved")
        .await;

    // Tasks: one started from the web chat shows while it runs, and cancel stops it.
    let held = Gate::default();
    model.on(
        Some("count the stars"),
        Reply::Hold(held.clone(), Box::new(Reply::Text("Too many.".into()))),
    );
    b.goto(&format!("{url}/chat/jarvis")).await;
    b.fill("#chat-text", "/task clu count the stars").await;
    b.click("#chat-form button[type=submit]").await;
    // The page shows the task as it was when loaded: queued for a moment, then running.
    for _ in 0..100 {
        b.goto(&format!("{url}/tasks")).await;
        if b.has("form[action$='/cancel'] button").await && b.source().await.contains(">running<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.wait_text("main td", "the running task", |t| t == "running")
        .await;
    b.screenshot("tasks-running").await;
    b.click("form[action$='/cancel'] button").await;
    b.wait_text("[role=status]", "the cancel", |t| !t.is_empty())
        .await;
    for _ in 0..100 {
        b.goto(&format!("{url}/tasks")).await;
        if b.source().await.contains(">cancelled<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.wait_text("main td", "the cancelled task", |t| t == "cancelled")
        .await;
    held.open();

    // Memory: an edit is carried by the next prompt; an edit over a file that changed meanwhile
    // is refused and loses nothing. A secret pasted into a file is masked on the page.
    let memory = gw.workspace("jarvis").join("MEMORY.md");
    b.goto(&format!("{url}/memory/jarvis/file?name=MEMORY.md"))
        .await;
    b.fill(
        "#text",
        "# Memory\n- The owner's cat is called Biscuit-7731.\n",
    )
    .await;
    b.click("main form button[type=submit]").await;
    b.wait_text("[role=status]", "saved", |t| t.contains("Saved MEMORY.md"))
        .await;
    assert!(
        std::fs::read_to_string(&memory)
            .expect("MEMORY.md")
            .contains("Biscuit-7731")
    );
    b.goto(&format!("{url}/memory/jarvis")).await;
    b.fill("#q", "Biscuit").await;
    b.click("form[role=search] button").await;
    let hit = b
        .wait_text("main li", "the search hit", |t| t.contains("Biscuit-7731"))
        .await;
    assert!(hit.contains("MEMORY.md"), "{hit}");
    b.goto(&format!("{url}/chat/jarvis")).await;
    b.fill("#chat-text", "what is my cat called?").await;
    b.click("#chat-form button[type=submit]").await;
    // (The cancelled task's report reaches jarvis with this message, before it.)
    b.wait_text(".msg.assistant:not(.pending)", "the echo", |t| {
        t.starts_with("echo: ") && t.ends_with("what is my cat called?")
    })
    .await;
    let last = model.requests().last().cloned().expect("a model request");
    assert!(last.system().contains("Biscuit-7731"), "{}", last.system());

    b.goto(&format!("{url}/memory/jarvis/file?name=MEMORY.md"))
        .await;
    std::fs::write(
        &memory,
        "# Memory\n- Remembered meanwhile: the anthropic key is sk-ant-test-SECRET\n",
    )
    .expect("write");
    b.fill("#text", "# Memory\n- My stale edit\n").await;
    b.click("main form button[type=submit]").await;
    b.wait_text("[role=alert]", "the conflict", |t| {
        t.contains("changed while you were editing")
    })
    .await;
    let now = std::fs::read_to_string(&memory).expect("MEMORY.md");
    assert!(now.contains("Remembered meanwhile") && !now.contains("stale edit"));
    let src = b.source().await;
    assert!(
        src.contains("My stale edit"),
        "the refused edit is not shown back"
    );
    assert!(
        src.contains("the anthropic key is ***"),
        "the secret is not masked"
    );
    b.screenshot("memory-conflict").await;
    sources.push(("memory".into(), src));

    // Every other page, and the API answers the pages' login may read.
    for (name, path) in [
        ("tasks", "/tasks"),
        ("approvals", "/approvals"),
        ("tools", "/tools"),
        ("usage", "/usage"),
        ("logs", "/logs"),
        ("memory-index", "/memory/jarvis"),
    ] {
        b.goto(&format!("{url}{path}")).await;
        b.wait_text("h1", name, |t| !t.is_empty()).await;
        b.screenshot(name).await;
        sources.push((name.into(), b.source().await));
    }
    for path in [
        "/v1/status",
        "/v1/sessions",
        "/v1/tasks",
        "/v1/approvals?all=true",
        "/v1/mcp",
    ] {
        b.goto(&format!("{url}{path}")).await;
        let src = b.source().await;
        assert!(
            !src.contains("missing or wrong gateway token"),
            "{path}: {src}"
        );
        sources.push((path.into(), src));
    }
    for (what, src) in &sources {
        assert_no_secret(what, src);
    }
    // The log page shows lines of this very test (the login refused earlier).
    assert!(
        sources
            .iter()
            .any(|(n, s)| n == "logs" && s.contains("wrong token was refused")),
        "the logs page does not show the log"
    );

    // Without the cookie, or with a wrong CSRF token, or from another origin: refused.
    let cookie = b.cookie("sb_session").await.expect("cookie");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = [("csrf", "x"), ("schedule", "0 9 * * *"), ("message", "m")];
    let post = |path: &str, cookie: Option<&str>, origin: Option<&str>, form: &[(&str, &str)]| {
        let mut req = http.post(format!("{url}{path}")).form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("sb_session={c}"));
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.send().await.expect("post").status() }
    };
    assert_eq!(post("/cron", None, None, &form).await, 401);
    let r = http.get(format!("{url}/cron")).send().await.expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(post("/cron", Some(&cookie), None, &form).await, 403);
    let page = http
        .get(format!("{url}/cron"))
        .header("cookie", format!("sb_session={cookie}"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let csrf = page
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf meta")
        .to_string();
    let good = [
        ("csrf", csrf.as_str()),
        ("schedule", "0 9 * * *"),
        ("message", "from curl"),
    ];
    let evil = Some("http://evil.example");
    assert_eq!(
        post("/cron", Some(&cookie), evil, &good).await,
        403,
        "a cross-origin post was accepted"
    );
    assert_eq!(
        post("/v1/cron/changed", Some(&cookie), None, &[]).await,
        401,
        "an API change without the CSRF header was accepted"
    );
    assert_eq!(
        post("/cron", Some(&cookie), None, &good).await,
        303,
        "the same form with its token is accepted"
    );

    // Logging out ends the login.
    b.goto(&format!("{url}/tasks")).await;
    b.click("header form button").await;
    b.wait_text("h1", "the login page", |t| t == "Log in").await;
    let r = http
        .get(format!("{url}/tasks"))
        .header("cookie", format!("sb_session={cookie}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303, "the login still works after logout");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_the_control_room_answers_this_machine_only() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = gateway(&model, &tg, None).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http.get(format!("{}/", gw.url)).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let set = header("set-cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let csp = header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    // A page of another site that points its own name at 127.0.0.1 (DNS rebinding).
    let r = http
        .get(format!("{}/", gw.url))
        .header("host", "evil.example")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    // A change without a login is refused even here.
    let r = http
        .post(format!("{}/cron", gw.url))
        .form(&[("schedule", "0 9 * * *"), ("message", "m")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
}
