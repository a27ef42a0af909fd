//! Several gateways on one PostgreSQL store (a throwaway cluster, see `support::postgres`): each
//! message answered once and in order per chat while a gateway is SIGKILLed, the dead gateway's
//! chats, polling and replies taken over; a cron slot fired once; Telegram webhooks through a real
//! load balancer (Debian's nginx) reaching both; Discord's shards split between two gateways.

use crate::crash::{assert_once_in_order, drop_resends, unrecorded_sends};
use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::gateway::{config_text, free_port};
use crate::support::nginx::Nginx;
use crate::support::postgres::{self, Cluster};
use crate::support::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn store(url: &str) -> String {
    format!(r#"store: {{ url: "{url}" }},"#)
}

fn psql(url: &str, sql: &str) -> String {
    Cluster::shared().expect("cluster").psql(url, sql)
}

/// The port of the gateway holding lease `name` (instance ids are `host:port`).
fn holder(url: &str, name: &str) -> Option<u16> {
    psql(
        url,
        &format!("SELECT holder FROM leases WHERE name = '{name}'"),
    )
    .rsplit(':')
    .next()?
    .parse()
    .ok()
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1200 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never happened");
}

/// Replies the dead gateway had sent but not yet recorded: the one case a kill may double (see
/// `crash::in_flight_at_kill`), counted before anyone takes them over.
fn in_flight(url: &str, dead: u16, tg: &FakeTelegram) -> HashMap<i64, usize> {
    let pending: Vec<i64> = psql(
        url,
        &format!(
            "SELECT reply_to FROM outbox WHERE status = 'pending' AND parts_sent = 0
             AND owner LIKE '%:{dead}'"
        ),
    )
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect();
    unrecorded_sends(pending, tg).into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_answer_500_messages_over_50_chats_once_in_order_while_one_is_killed() {
    let Some(url) = postgres::database() else {
        return;
    };
    let model = FakeModel::start().await;
    model.set_echo_delay(Duration::from_millis(5));
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }}, {}"#,
        tg.url,
        store(&url)
    );
    let a = TestGateway::start(&model, &extra).await;
    let b = TestGateway::start(&model, &extra).await;
    let poller = wait_for("a gateway to poll Telegram", || {
        holder(&url, "role:telegram-poll")
    })
    .await;
    let (mut dying, survivor) = if poller == a.port { (a, b) } else { (b, a) };

    let chats: Vec<i64> = (0..50).map(|c| 9000 + c).collect();
    let mut written: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    let mut send = |from: usize, to: usize| {
        for i in from..to {
            let chat = chats[i % chats.len()];
            let text = format!("c{chat} m{i}");
            let id = tg.dm(chat, &text);
            written.entry(chat).or_default().push((id, text));
        }
    };
    send(0, 250);
    // Kill the gateway that polls and holds the chats while it is answering them.
    tg.wait_sent(|s| s.len() >= 60).await;
    dying.stop("KILL").await;
    let killed = Instant::now();
    tg.settle().await;
    let mut ambiguous = in_flight(&url, dying.port, &tg);
    let answered_at_kill = tg.sent().len();
    assert!(
        answered_at_kill < 250,
        "the kill came too late to test anything: {answered_at_kill} answered"
    );
    send(250, 500);
    // The survivor takes over the polling, the chats and the replies left undelivered.
    let port = survivor.port;
    wait_for("the survivor to poll", || {
        (holder(&url, "role:telegram-poll") == Some(port)).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    let doubled: usize = ambiguous.values().sum();
    for _ in 0..2400 {
        if tg.sent().len() >= 500 + doubled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let all_answered = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = tg.sent();
    assert_eq!(
        sent.len(),
        500 + doubled,
        "replies (answered at the kill: {answered_at_kill})\n{}",
        survivor.log()
    );
    drop_resends(&mut sent, &mut ambiguous);
    assert_once_in_order(&sent, &written);
    let chats_held: i64 = psql(
        &url,
        &format!("SELECT count(*) FROM leases WHERE name LIKE 'chat:%' AND holder LIKE '%:{port}'"),
    )
    .parse()
    .unwrap_or(0);
    assert_eq!(chats_held, 50, "the survivor holds every chat");
    eprintln!(
        "two gateways, 500 messages over 50 chats, one killed after {answered_at_kill} replies: \
         polling taken over in {:.1} s, every message answered {:.1} s after the kill, {doubled} resent",
        takeover.as_secs_f64(),
        all_answered.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_slot_fires_once_across_two_gateways_and_moves_when_its_gateway_dies() {
    let Some(url) = postgres::database() else {
        return;
    };
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let extra = format!(
        r#"channels: {{ telegram: {{ token: "1:SECRET", apiUrl: "{}", dmPolicy: "open" }} }}, {}"#,
        tg.url,
        store(&url)
    );
    let a = TestGateway::start(&model, &extra).await;
    let b = TestGateway::start(&model, &extra).await;
    for g in [&a, &b] {
        g.set_clock("2026-06-01T07:59:30Z");
    }
    let out = b
        .cli(&[
            "cron",
            "add",
            "0 9 * * *",
            "Good morning check-in",
            "--to",
            "telegram:111",
            "--tz",
            "Europe/London",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let scheduler = wait_for("a gateway to run the scheduler", || {
        holder(&url, "role:scheduler")
    })
    .await;
    for g in [&a, &b] {
        g.set_clock("2026-06-01T08:00:05Z");
    }
    tg.wait_sent(|s| !s.is_empty()).await;
    // Both gateways run a while longer with the slot due: nothing fires twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(tg.sent().len(), 1, "one post for the slot");
    assert_eq!(psql(&url, "SELECT count(*) FROM cron_runs"), "1");

    // The gateway running the scheduler dies; the other takes it over and fires the next slot.
    let (mut dying, survivor) = if scheduler == a.port { (a, b) } else { (b, a) };
    dying.stop("KILL").await;
    survivor.set_clock("2026-06-02T08:00:05Z");
    let port = survivor.port;
    wait_for("the survivor to run the scheduler", || {
        (holder(&url, "role:scheduler") == Some(port)).then_some(())
    })
    .await;
    tg.wait_sent(|s| s.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tg.sent().len(), 2, "one post per slot");
    assert_eq!(psql(&url, "SELECT count(*) FROM cron_runs"), "2");
    // `gateway status` shows both gateways and who holds what.
    let status = stdout(&survivor.cli(&["gateway", "status"]).await);
    assert!(status.contains("gateways on this store"), "{status}");
    assert!(status.contains(&format!(":{port}: alive")), "{status}");
    assert!(status.contains("scheduler"), "{status}");
}

fn update(id: i64, chat: i64, text: &str) -> serde_json::Value {
    serde_json::json!({ "update_id": id, "message": {
        "message_id": id, "date": 1_700_000_000,
        "chat": { "id": chat, "type": "private", "first_name": "Hook" },
        "from": { "id": chat, "is_bot": false, "first_name": "Hook" },
        "text": text
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_through_nginx_reach_two_gateways_once_each_and_a_wrong_secret_is_refused() {
    let Some(url) = postgres::database() else {
        return;
    };
    let ports = [free_port(), free_port()];
    let Some(lb) = Nginx::start(&ports).await else {
        return;
    };
    const SECRET: &str = "lb-secret_0123456789";
    let model = FakeModel::start().await;
    let tg = FakeTelegram::start().await;
    let hook = format!("{}/telegram/hook", lb.url);
    let mut gateways = Vec::new();
    for port in ports {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open",
                 webhook: {{ url: "{hook}", secret: "{SECRET}" }} }} }}, {}"#,
            tg.url,
            store(&url)
        );
        let text = config_text(&model.url, port, &dir.path().join("state"), &extra);
        gateways.push(TestGateway::start_in(dir, port, &text).await);
    }
    wait_for("both gateways to register the webhook", || {
        (tg.webhooks().len() >= 2).then_some(())
    })
    .await;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let post = |secret: &str, body: String| {
        let req = http
            .post(&hook)
            .header("content-type", "application/json")
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .body(body);
        async move { req.send().await.expect("post").status().as_u16() }
    };
    for _ in 0..2 {
        // Each gateway (round robin) refuses it.
        assert_eq!(
            post("wrong", update(1, 4000, "let me in").to_string()).await,
            401
        );
    }
    let mut written: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    let mut id = 10;
    for round in 0..5 {
        for c in 0..20 {
            let chat = 4100 + c;
            let text = format!("c{chat} m{round}");
            assert_eq!(post(SECRET, update(id, chat, &text).to_string()).await, 200);
            written.entry(chat).or_default().push((id, text));
            id += 1;
        }
    }
    let sent = tg.wait_sent(|s| s.len() >= 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tg.sent().len(), 100, "each update answered once");
    assert_once_in_order(&sent, &written);
    assert!(
        !sent.iter().any(|s| s.chat_id == 4000),
        "the refused one was not answered"
    );
    // The load balancer spread the updates, and each gateway answers chats of its own.
    let log = lb.access_log();
    for port in ports {
        assert!(
            log.contains(&format!("127.0.0.1:{port} 200")),
            "nginx never reached {port}:\n{log}"
        );
        let held: i64 = psql(
            &url,
            &format!(
                "SELECT count(*) FROM leases WHERE name LIKE 'chat:%' AND holder LIKE '%:{port}'"
            ),
        )
        .parse()
        .unwrap_or(0);
        assert!(held > 0, "gateway {port} holds no chat");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_on_one_store_split_discord_by_shard_and_answer_each_message_once() {
    let Some(url) = postgres::database() else {
        return;
    };
    // Guild 40 is on shard 0 of 2, guild 4194304 (1 << 22) on shard 1.
    let model = FakeModel::start().await;
    let d = FakeDiscord::start().await;
    let config = |ids: &str| {
        format!(
            r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "open",
                 requireMention: false, guilds: {{ "40": {{ channels: "*" }}, "4194304": {{ channels: "*" }} }},
                 shards: {{ total: 2, ids: "{ids}" }} }} }}, {}"#,
            d.api_url,
            store(&url)
        )
    };
    let zero = TestGateway::start(&model, &config("0")).await;
    d.wait_until("shard 0 to identify", |d| d.identifies() >= 1)
        .await;
    let one = TestGateway::start(&model, &config("1")).await;
    d.wait_until("shard 1 to identify", |d| d.identifies() >= 2)
        .await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.sent().len(), 3, "a message was answered twice");
    assert_eq!(
        psql(&url, "SELECT count(*) FROM inbox"),
        "3",
        "stored once each"
    );
    // Each message was answered by the gateway whose shard received it.
    let leases = psql(&url, "SELECT name, holder FROM leases ORDER BY name");
    assert_eq!(
        holder(&url, "chat:discord:channel:41"),
        Some(zero.port),
        "{leases}"
    );
    assert_eq!(
        holder(&url, "chat:discord:channel:4194305"),
        Some(one.port),
        "{leases}"
    );
    assert_eq!(
        holder(&url, "chat:discord:dm:31"),
        Some(zero.port),
        "{leases}"
    );
}
