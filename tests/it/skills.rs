//! Skills: a SKILL.md folder dropped into a workspace is listed in the prompt of the next turn,
//! loaded with `read_skill` from Telegram, and nothing outside its folder can be read through it.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_skill_dropped_into_the_workspace_is_listed_and_read_from_telegram() {
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }},"#,
            tg.url
        ),
    )
    .await;

    // Installed while the gateway runs: no restart needed.
    let skills = gw.workspace("jarvis").join("skills");
    let weather = skills.join("weather");
    std::fs::create_dir_all(weather.join("ref")).unwrap();
    std::fs::write(
        weather.join("SKILL.md"),
        "---\nname: weather\ndescription: Look up the forecast for a city\n---\n\n# Weather\nAsk wttr.in for CITY and give the high and low.\n",
    )
    .unwrap();
    std::fs::write(weather.join("ref/cities.md"), "London, Paris, Oslo").unwrap();
    std::fs::create_dir_all(skills.join("broken")).unwrap();
    std::fs::write(skills.join("broken/SKILL.md"), "just text, no front matter").unwrap();

    model.on(
        Some("forecast"),
        Reply::Tool {
            name: "read_skill".into(),
            input: json!({ "name": "weather" }),
        },
    );
    model.on(
        Some("forecast"),
        Reply::Tool {
            name: "read_skill".into(),
            input: json!({ "name": "weather", "path": "ref/cities.md" }),
        },
    );
    model.on(
        Some("forecast"),
        Reply::Tool {
            name: "read_skill".into(),
            input: json!({ "name": "weather", "path": "../../IDENTITY.md" }),
        },
    );
    model.on(Some("forecast"), Reply::Text("Sunny in Oslo.".into()));
    tg.dm(111, "what is the forecast for Oslo?");
    let sent = tg.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].text, "Sunny in Oslo.");

    let reqs = model.wait_requests(4).await;
    let first = &reqs[reqs.len() - 4];
    let system = first.system();
    assert!(
        system.contains("- `weather`: Look up the forecast for a city"),
        "{system}"
    );
    assert!(
        !system.contains("wttr.in"),
        "only names and descriptions go in the prompt"
    );
    assert!(!system.contains("broken"), "{system}");
    let tools: Vec<String> = first.body["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(tools.contains(&"read_skill".to_string()), "{tools:?}");

    let results = reqs[reqs.len() - 1].tool_results();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(
        results[0].starts_with("# Weather\nAsk wttr.in"),
        "{}",
        results[0]
    );
    assert!(results[0].contains("ref/cities.md"), "{}", results[0]);
    assert_eq!(results[1], "London, Paris, Oslo");
    assert!(results[2].contains("outside the skill"), "{}", results[2]);
    assert!(
        !results[2].contains("You are"),
        "IDENTITY.md must not leak: {}",
        results[2]
    );

    // The malformed one is named once in the log and by the CLI, and nothing crashed.
    assert!(
        gw.log().contains("skipping a malformed skill"),
        "{}",
        gw.log()
    );
    let out = gw.cli(&["skills", "list", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["skills"][0]["name"], "weather");
    assert_eq!(listed["skills"][0]["agents"], json!(["jarvis"]));
    assert!(
        listed["skipped"][0]["file"]
            .as_str()
            .unwrap_or_default()
            .ends_with("broken/SKILL.md"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_skills_the_prompt_and_tools_stay_as_they_were() {
    let model = FakeModel::start().await;
    model.on(Some("hi"), Reply::Text("hello".into()));
    let gw = TestGateway::start(&model, "").await;
    gw.chat("a", "hi").await;
    let req = model.requests().pop().unwrap();
    assert!(!req.system().contains("## Skills"));
    let tools = req.body["tools"].to_string();
    assert!(!tools.contains("read_skill"), "{tools}");
    let out = gw.cli(&["skills", "list"]).await;
    assert!(
        stdout(&out).contains("no skills installed"),
        "{}",
        stdout(&out)
    );
}

/// A running gateway keeps what a turn reads from the workspace in memory between changes: every
/// kind of hand edit (in place, renamed over as editors save, a new file, a new or edited or
/// removed skill) must still reach the very next message.
#[tokio::test(flavor = "multi_thread")]
async fn hand_edits_to_the_workspace_reach_the_next_message() {
    let model = FakeModel::start().await;
    model.on(None, Reply::Text("ok".into()));
    let gw = TestGateway::start(&model, "").await;
    let ws = gw.workspace("jarvis");
    let system = || async {
        gw.chat("a", "hi").await;
        model.requests().pop().expect("a model request").system()
    };
    let first = system().await;
    assert!(first.contains("You are Jarvis"), "{first}");

    std::fs::write(
        ws.join("IDENTITY.md"),
        "# Jarvis\n\nYou are Jarvis, and you speak like a pirate.\n",
    )
    .unwrap();
    assert!(system().await.contains("like a pirate"), "edited in place");

    let tmp = ws.join(".MEMORY.md.swp");
    std::fs::write(&tmp, "# Memory\n\n- The user's cat is called Biscuit.\n").unwrap();
    std::fs::rename(&tmp, ws.join("MEMORY.md")).unwrap();
    assert!(system().await.contains("Biscuit"), "renamed over");

    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive();
    std::fs::write(
        ws.join("memory")
            .join(format!("{}.md", today.format("%Y-%m-%d"))),
        "- 09:00 Booked the dentist for Friday.\n",
    )
    .unwrap();
    assert!(
        system().await.contains("Booked the dentist"),
        "a new daily note"
    );

    let skill = ws.join("skills/weather");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: weather\ndescription: Look up the forecast\n---\n\nAsk wttr.in.\n",
    )
    .unwrap();
    assert!(
        system().await.contains("- `weather`: Look up the forecast"),
        "a new skill"
    );
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: weather\ndescription: Forecasts for any city\n---\n\nAsk wttr.in.\n",
    )
    .unwrap();
    let edited = system().await;
    assert!(
        edited.contains("- `weather`: Forecasts for any city"),
        "{edited}"
    );
    std::fs::remove_dir_all(&skill).unwrap();
    assert!(!system().await.contains("weather"), "a removed skill");
    // A skill in the state dir's shared folder.
    let shared = gw.dir.path().join("state/skills/timer");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(
        shared.join("SKILL.md"),
        "---\nname: timer\ndescription: Set a timer\n---\n\nCount down.\n",
    )
    .unwrap();
    assert!(
        system().await.contains("- `timer`: Set a timer"),
        "a shared skill"
    );
}
