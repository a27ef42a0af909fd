//! `switchboard import openclaw`: a fixture OpenClaw state dir laid out as OpenClaw's own docs
//! and source describe it (JSON5 config with comments, a Telegram and a Discord channel, two
//! agents with their workspaces, memory files, a skill, cron jobs in two time zones), shown as
//! a plan, applied, and then used: the imported agent answers on Telegram with the imported
//! memory in its prompt, and an imported cron job fires.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::gateway::{free_port, run_cli_env};
use crate::support::*;
use std::path::Path;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn fixture(oc: &Path, model_url: &str) {
    write(
        &oc.join("openclaw.json"),
        &format!(
            r#"// ~/.openclaw/openclaw.json — my assistant
{{
  agents: {{
    defaults: {{
      workspace: "{ws}",
      model: {{ primary: "anthropic/claude-test", fallbacks: ["openai/gpt-test"] }},
    }},
    list: [
      {{ id: "main", default: true }},
      {{ id: "clu", workspace: "{ws_clu}", model: "openai/gpt-test" }}, // the coder
    ],
  }},
  models: {{
    providers: {{
      anthropic: {{ baseUrl: "{model_url}", apiKey: "sk-ant-fixture-SECRET", api: "anthropic-messages" }},
      openai: {{ baseUrl: "{model_url}/v1", apiKey: "sk-oai-fixture-SECRET", api: "openai-completions" }},
    }},
  }},
  channels: {{
    telegram: {{
      enabled: true,
      botToken: "123456:SECRET-TG",
      dmPolicy: "pairing",
      allowFrom: ["tg:111", "@someone"],
      groups: {{ "-100777": {{ requireMention: false }} }},
    }},
    discord: {{
      enabled: true,
      token: "MTIz.SECRET-DC",
      dm: {{ policy: "open", allowFrom: ["*"] }},
      guilds: {{ "40": {{ requireMention: false, channels: {{ "4001": {{ allow: true }} }} }} }},
    }},
    whatsapp: {{ allowFrom: ["+15555550123"] }},
  }},
}}
"#,
            ws = oc.join("workspace").display(),
            ws_clu = oc.join("workspace-clu").display(),
        ),
    );
    let ws = oc.join("workspace");
    write(
        &ws.join("IDENTITY.md"),
        "# Friday\n\nName: Friday. Emoji: 🦞\n",
    );
    write(&ws.join("SOUL.md"), "Be warm, brief and exact.\n");
    write(&ws.join("USER.md"), "The user is Sam, in London.\n");
    write(
        &ws.join("MEMORY.md"),
        "# Memory\n\n- Sam's boat is called Bluebird.\n",
    );
    write(
        &ws.join("memory/2026-02-28.md"),
        "- Sam booked the ferry.\n",
    );
    write(
        &ws.join("skills/weather/SKILL.md"),
        "---\nname: weather\ndescription: Look up the weather\n---\nUse the forecast.\n",
    );
    write(&ws.join("TOOLS.md"), "Local tool notes.\n");
    let clu = oc.join("workspace-clu");
    write(&clu.join("IDENTITY.md"), "# CLU\n\nYou write code.\n");
    write(&clu.join("MEMORY.md"), "- The repo is switchboard.\n");
    write(
        &oc.join("cron/jobs.json"),
        r#"{ "version": 1, "jobs": [
  { "id": "a1", "name": "Morning brief", "enabled": true, "agentId": "main",
    "schedule": { "kind": "cron", "expr": "0 7 * * *", "tz": "Europe/London" },
    "sessionTarget": "isolated", "payload": { "kind": "agentTurn", "message": "morning brief please" },
    "delivery": { "mode": "announce", "channel": "telegram", "to": "111" } },
  { "id": "a2", "name": "NY standup", "enabled": true, "agentId": "clu",
    "schedule": { "kind": "cron", "expr": "30 9 * * 1-5", "tz": "America/New_York" },
    "payload": { "kind": "agentTurn", "message": "standup notes" },
    "delivery": { "mode": "announce", "channel": "discord", "to": "channel:4001" } },
  { "id": "a3", "name": "Weekly review", "enabled": false,
    "schedule": { "kind": "cron", "expr": "0 18 * * 5", "tz": "Europe/London" },
    "payload": { "kind": "agentTurn", "message": "weekly review" } },
  { "id": "a4", "name": "Dentist", "schedule": { "kind": "at", "at": "2026-03-05T09:00:00Z" },
    "payload": { "kind": "systemEvent", "text": "dentist at 10" } }
] }"#,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openclaw_setup_is_planned_applied_and_then_answers_and_fires() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let oc = dir.path().join("openclaw");
    fixture(&oc, &model.url);
    let config = dir.path().join("config.json5");
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "2026-03-02T06:00:00Z").unwrap();
    let home = dir.path().to_path_buf();
    let cli = |args: Vec<String>| {
        let config = config.clone();
        let (home, clock) = (home.clone(), clock.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli_env(
                &config,
                &args,
                "",
                &[("HOME", &home), ("SWITCHBOARD_TEST_CLOCK", &clock)],
            )
            .await
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ocs = oc.to_str().unwrap().to_string();

    // The plan: what maps to what, what cannot come over; nothing written, no secret shown.
    let out = cli(args(&["import", "openclaw", &ocs])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    for want in [
        "channels.telegram ← channels.telegram",
        r#""token":"***""#,
        r#""allowFrom":["111"]"#,
        r#""-100777":{"requireMention":false}"#,
        r#"channels.discord ← channels.discord"#,
        r#""guilds":{"40":{"channels":["4001"]}}"#,
        "models.default ← agents.defaults.model.primary",
        "main (coordinator) ← workspace",
        "clu ← workspace",
        "main/IDENTITY.md ← IDENTITY.md + SOUL.md + USER.md",
        "main/skills/weather/SKILL.md",
        "main/memory/2026-02-28.md",
        "\"Morning brief\" 0 7 * * * (Europe/London) → telegram:111 as main",
        "\"NY standup\" 30 9 * * 1-5 (America/New_York) → discord:channel:4001 as clu",
        "\"Weekly review\" 0 18 * * 5 (Europe/London) → no chat as main (disabled)",
        "channels.whatsapp: not a channel switchboard has",
        "@someone",
        "TOOLS.md",
        "\"Dentist\": a at schedule",
        "nothing was changed",
    ] {
        assert!(plan.contains(want), "plan lacks {want:?}:\n{plan}");
    }
    for secret in ["SECRET-TG", "SECRET-DC", "sk-ant-fixture-SECRET"] {
        assert!(!plan.contains(secret), "{plan}");
    }
    assert!(!config.exists(), "plan mode writes nothing");

    // Apply.
    let out = cli(args(&["import", "openclaw", &ocs, "--apply"])).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("3 cron job(s)"), "{}", stdout(&out));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with("// switchboard config, brought over from OpenClaw"),
        "{text}"
    );
    let state = home.join(".switchboard");
    let ws = state.join("agents/main");
    assert_eq!(
        std::fs::read_to_string(ws.join("MEMORY.md")).unwrap(),
        "# Memory\n\n- Sam's boat is called Bluebird.\n"
    );
    let identity = std::fs::read_to_string(ws.join("IDENTITY.md")).unwrap();
    assert!(identity.contains("Name: Friday") && identity.contains("## Soul\n\nBe warm"));
    assert!(identity.contains("## About your user\n\nThe user is Sam"));
    assert!(ws.join("memory/2026-02-28.md").is_file());
    assert!(ws.join("skills/weather/SKILL.md").is_file());
    assert!(state.join("agents/clu/MEMORY.md").is_file());
    let db = rusqlite::Connection::open(state.join("switchboard.db")).unwrap();
    let jobs: Vec<(String, String, String, Option<String>, bool)> = db
        .prepare("SELECT name, tz, agent, target, enabled FROM cron_jobs ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert_eq!(jobs[0].1, "Europe/London");
    assert_eq!(jobs[1].1, "America/New_York");
    assert_eq!(jobs[1].3.as_deref(), Some("discord:channel:4001"));
    assert!(!jobs[2].4, "a disabled job stays disabled");
    drop(db);
    let out = cli(args(&["config", "get", "channels.telegram.token"])).await;
    assert_eq!(stdout(&out).trim(), "***");

    // Again: nothing doubles; the file's comments stay; a file changed here is kept, the
    // OpenClaw one put beside it.
    std::fs::write(ws.join("MEMORY.md"), "# Memory\n\n- edited here\n").unwrap();
    let out = cli(args(&["import", "openclaw", &ocs, "--apply"])).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("0 cron job(s)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("backed up the current state"));
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .starts_with("// switchboard config")
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("MEMORY.md")).unwrap(),
        "# Memory\n\n- edited here\n"
    );
    assert!(ws.join("MEMORY.openclaw.md").is_file());
    std::fs::write(
        ws.join("MEMORY.md"),
        "# Memory\n\n- Sam's boat is called Bluebird.\n",
    )
    .unwrap();

    // Run it: this machine's state dir and port, the fake Bot API, no real Discord.
    let port = free_port();
    let state_s = state.to_str().unwrap().to_string();
    for (k, v) in [
        ("stateDir", format!("\"{state_s}\"")),
        ("timezone", "\"Europe/London\"".into()),
        ("gateway.port", port.to_string()),
        ("channels.telegram.apiUrl", format!("\"{}\"", tg.url)),
        (
            "channels.discord.apiUrl",
            format!("\"http://127.0.0.1:{}\"", free_port()),
        ),
    ] {
        let out = cli(vec!["config".into(), "set".into(), k.into(), v]).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let text = std::fs::read_to_string(&config).unwrap();
    let gw = TestGateway::start_in(dir, port, &text).await;
    tg.dm(111, "what is my boat called?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].text, "echo: what is my boat called?");
    let system = model.requests().last().unwrap().body["system"].to_string();
    assert!(
        system.contains("Bluebird"),
        "the imported memory is in the prompt: {system}"
    );
    assert!(system.contains("Be warm, brief and exact"), "{system}");

    // The imported 07:00 London job fires.
    gw.set_clock("2026-03-02T07:00:20Z");
    let sent = tg
        .wait_sent(|s| s.iter().any(|m| m.text == "echo: morning brief please"))
        .await;
    assert!(
        sent.iter()
            .any(|m| m.chat_id == 111 && m.text == "echo: morning brief please")
    );
}
