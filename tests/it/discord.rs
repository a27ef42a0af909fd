//! The Discord channel through the real gateway and serenity, against the fake Discord.

use crate::support::fake_discord::FakeDiscord;
use crate::support::*;
use std::time::Duration;

fn channel(d: &FakeDiscord, rest: &str) -> String {
    format!(
        r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", {rest} }} }},"#,
        d.api_url
    )
}

async fn setup(rest: &str) -> (FakeModel, FakeDiscord, TestGateway) {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let gw = TestGateway::start(&model, &channel(&d, rest)).await;
    d.wait_until("the bot to identify", |d| {
        d.identifies() >= 1 && d.connected()
    })
    .await;
    (model, d, gw)
}

const GUILDS: &str =
    r#"dmPolicy: "open", guilds: { "40": { channels: ["41"] }, "50": { channels: "*" } }"#;

#[tokio::test(flavor = "multi_thread")]
async fn dms_and_guild_channels_with_mentions_and_threads() {
    let (_model, d, gw) = setup(GUILDS).await;
    let id = d.message(500_030, None, 30, "hello from a DM", false);
    let sent = d.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].channel, 500_030);
    assert_eq!(sent[0].content, "echo: hello from a DM");
    assert_eq!(sent[0].reply_to, Some(id.to_string()));
    // Guild channel: only when mentioned; unlisted channels never.
    d.message(41, Some(40), 31, "chatting among ourselves", false);
    d.message(42, Some(40), 31, "<@99> not a served channel", true);
    let id = d.message(41, Some(40), 31, "<@99> what's up?", true);
    let sent = d.wait_sent(|s| s.len() >= 2).await;
    assert_eq!(sent[1].channel, 41);
    assert_eq!(sent[1].content, "echo: what's up?");
    assert_eq!(sent[1].reply_to, Some(id.to_string()));
    // A thread (its own channel) in a guild whose every channel is served.
    d.message(51, Some(50), 32, "<@99> in the thread", true);
    let sent = d.wait_sent(|s| s.iter().any(|m| m.channel == 51)).await;
    assert_eq!(
        sent.iter().find(|m| m.channel == 51).unwrap().content,
        "echo: in the thread"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(d.sent().iter().all(|m| m.channel != 42));
    assert_eq!(d.sent().len(), 3);
    assert!(
        !gw.log().contains("SECRET-DC"),
        "the bot token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_reply_is_split_under_2000_and_send_posts_by_channel_id() {
    let (model, d, gw) = setup(GUILDS).await;
    let paragraphs: Vec<String> = (0..30)
        .map(|i| format!("Part {i:02} {}", "words ".repeat(30).trim_end()))
        .collect();
    let long = paragraphs.join("\n\n");
    assert!(long.chars().count() >= 5000);
    model.on(Some("long one"), Reply::Text(long.clone()));
    d.message(500_030, None, 30, "long one", false);
    let sent = d
        .wait_sent(|s| s.iter().any(|m| m.content.contains("Part 29")))
        .await;
    assert!(sent.len() >= 3);
    assert!(sent.iter().all(|m| m.content.chars().count() <= 2000));
    let joined = sent
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(joined, long);
    let out = gw
        .cli(&["send", "--to", "discord:channel:41", "Daily check-in"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    d.wait_sent(|s| {
        s.iter()
            .any(|m| m.channel == 41 && m.content == "Daily check-in")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pairing_works_the_same_as_on_telegram() {
    let (_model, d, gw) = setup(r#"dmPolicy: "pairing""#).await;
    d.message(500_033, None, 33, "hi", false);
    d.message(500_033, None, 33, "hello?", false);
    let sent = d.wait_sent(|s| !s.is_empty()).await;
    let code = sent[0]
        .content
        .lines()
        .find(|l| l.contains("switchboard pairing approve discord"))
        .and_then(|l| l.rsplit(' ').next())
        .expect("code")
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.sent().len(), 1, "one reply per unknown sender");
    let out = gw.cli(&["pairing", "approve", "discord", &code]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    d.message(500_033, None, 33, "now?", false);
    d.wait_sent(|s| s.iter().any(|m| m.content == "echo: now?"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_is_resumed_and_a_lost_session_is_caught_up_over_rest() {
    let (_model, d, _gw) = setup(GUILDS).await;
    d.message(500_030, None, 30, "before", false);
    d.wait_sent(|s| s.len() == 1).await;
    // A network cut: serenity resumes, and a message sent right after is answered.
    d.drop_connection();
    d.wait_until("a resume", |d| d.resumes() >= 1 && d.connected())
        .await;
    d.message(500_030, None, 30, "after the drop", false);
    d.wait_sent(|s| s.iter().any(|m| m.content == "echo: after the drop"))
        .await;
    // The session is lost while a message is posted: after a fresh IDENTIFY it is fetched.
    d.invalidate_session();
    d.drop_connection();
    d.message(500_030, None, 30, "during the gap", false);
    d.wait_until("a fresh identify", |d| d.identifies() >= 2)
        .await;
    d.wait_sent(|s| s.iter().any(|m| m.content == "echo: during the gap"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = d
        .sent()
        .iter()
        .filter(|m| m.content == "echo: during the gap")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn disallowed_intents_stop_the_channel_with_the_fix_named() {
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    d.close_on_identify(4014);
    let gw = TestGateway::start(&model, &channel(&d, GUILDS)).await;
    for _ in 0..200 {
        if gw.log().contains("Message Content intent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gw.log().contains("enable the Message Content intent"),
        "{}",
        gw.log()
    );
    // The rest of the gateway keeps working.
    assert_eq!(gw.chat("me", "still here?").await, "echo: still here?");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_honoured_and_a_restart_loses_and_doubles_nothing() {
    let (model, d, mut gw) = setup(GUILDS).await;
    d.rate_limit_next(1.0);
    d.message(500_030, None, 30, "rate me", false);
    let sent = d.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent.len(), 1);
    let a = d.attempts();
    assert_eq!(a.len(), 2);
    assert!(
        a[1] - a[0] >= Duration::from_millis(950),
        "waited retry-after"
    );

    model.on(
        Some("hold on"),
        Reply::Hold(Gate::default(), Box::new(Reply::Text("never".into()))),
    );
    d.message(500_030, None, 30, "hold on", false);
    model.wait_requests(2).await;
    gw.stop("KILL").await;
    gw.restart().await;
    d.wait_sent(|s| s.iter().any(|m| m.content == "echo: hold on"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.sent().len(), 2, "{:#?}", d.sent());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_check_in_is_posted_to_a_discord_channel() {
    let (_model, d, gw) = setup(GUILDS).await;
    gw.set_clock("2026-07-01T07:59:50Z");
    let out = gw
        .cli(&[
            "cron",
            "add",
            "0 9 * * *",
            "Good morning check-in",
            "--to",
            "discord:channel:41",
            "--tz",
            "Europe/London",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    gw.set_clock("2026-07-01T08:00:02Z");
    let sent = d.wait_sent(|s| !s.is_empty()).await;
    assert_eq!(sent[0].channel, 41);
    assert_eq!(sent[0].content, "echo: Good morning check-in");
    assert_eq!(sent[0].reply_to, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_range_identifies_as_those_shards_and_a_bad_range_is_refused() {
    // One gateway alone runs shard 0 of 1.
    let (_model, d, _gw) = setup(GUILDS).await;
    assert_eq!(d.identified_shards(), vec![serde_json::json!([0, 1])]);
    // This gateway runs shard 1 of 2 (another runs shard 0): it identifies as that shard (what
    // each shard is then sent is the next test's).
    let (_model, d, _gw) = setup(&format!(r#"{GUILDS}, shards: {{ total: 2, ids: "1" }}"#)).await;
    assert_eq!(d.identified_shards(), vec![serde_json::json!([1, 2])]);
    // Shards outside the total are named by the config check.
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = crate::support::gateway::config_text(
        &model.url,
        crate::support::gateway::free_port(),
        &dir.path().join("state"),
        r#"channels: { discord: { token: "x", shards: { total: 2, ids: "1-2" } } },"#,
    );
    let cfg = dir.path().join("config.json5");
    std::fs::write(&cfg, text).expect("config");
    let out = crate::support::gateway::run_cli(&cfg, &["config", "validate"], "").await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("channels.discord.shards") && err.contains("not within shards 0-1 of 2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_split_the_guilds_by_shard_and_dms_go_to_shard_zero() {
    // Guild 40 is on shard 0 of 2, guild 4194304 (1 << 22) on shard 1.
    const SPLIT: &str = r#"dmPolicy: "open", requireMention: false,
        guilds: { "40": { channels: "*" }, "4194304": { channels: "*" } }"#;
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let zero = TestGateway::start(
        &model,
        &channel(&d, &format!(r#"{SPLIT}, shards: {{ total: 2, ids: "0" }}"#)),
    )
    .await;
    d.wait_until("shard 0 to identify", |d| d.identifies() >= 1)
        .await;
    let one = TestGateway::start(
        &model,
        &channel(&d, &format!(r#"{SPLIT}, shards: {{ total: 2, ids: "1" }}"#)),
    )
    .await;
    d.wait_until("shard 1 to identify", |d| d.identifies() >= 2)
        .await;
    let mut shards = d.identified_shards();
    shards.sort_by_key(|s| s[0].as_u64());
    assert_eq!(
        shards,
        vec![serde_json::json!([0, 2]), serde_json::json!([1, 2])]
    );
    d.message(41, Some(40), 31, "hello guild forty", false);
    d.message(
        4_194_305,
        Some(4_194_304),
        31,
        "hello the other guild",
        false,
    );
    d.message(500_031, None, 31, "hello in a DM", false);
    d.wait_sent(|s| s.len() >= 3).await;
    let handled = |gw: &TestGateway, text: &str| {
        crate::support::gateway::count(
            &gw.dir.path().join("state/switchboard.db"),
            &format!("SELECT count(*) FROM inbox WHERE json_extract(payload, '$.text') = '{text}'"),
        )
    };
    assert_eq!(handled(&zero, "hello guild forty"), 1);
    assert_eq!(handled(&one, "hello guild forty"), 0);
    assert_eq!(handled(&one, "hello the other guild"), 1);
    assert_eq!(handled(&zero, "hello the other guild"), 0);
    assert_eq!(handled(&zero, "hello in a DM"), 1);
    assert_eq!(handled(&one, "hello in a DM"), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.sent().len(), 3, "a message was answered twice");
}
