//! Running it for months, measured: `backup` of a state with 100,000 turns (time and size),
//! `logs --grep` over 1 GB of log files, and `import openclaw --apply` of a small OpenClaw
//! setup. Prints figures; asserts nothing about time.
//!
//! `cargo bench --bench operations` (BENCH_LOG_MB=1024 by default).

use std::time::{Duration, Instant};
use switchboard::config::Config;
use switchboard::store::{NewTurn, SessionKind, Store};

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn config(dir: &std::path::Path) -> (Config, std::path::PathBuf) {
    let path = dir.join("config.json5");
    std::fs::write(
        &path,
        format!(
            r#"{{ stateDir: "{}", timezone: "Europe/London", providers: {{ bench: {{ kind: "openai", baseUrl: "http://127.0.0.1:9/v1" }} }},
            models: {{ default: "bench/x" }}, agents: {{ jarvis: {{ coordinator: true }} }} }}"#,
            dir.join("state").display()
        ),
    )
    .unwrap();
    (Config::load(&path).unwrap(), path)
}

async fn backup() {
    let dir = tempfile::tempdir().unwrap();
    let (c, path) = config(dir.path());
    let store = Store::open(&c.db_path()).unwrap();
    for s in 0..1000 {
        let id = store
            .session_open(
                &format!("b:{s}"),
                SessionKind::Main,
                "jarvis",
                Some("local:b"),
                None,
            )
            .await
            .unwrap();
        let turns: Vec<NewTurn> = (0..100)
            .map(|i| NewTurn {
                role: if i % 2 == 0 { "user" } else { "assistant" },
                content: serde_json::json!([{ "type": "text", "text": format!("message {s}-{i} about invoice {} for Dana, the total is {} euros", s * 100 + i, i * 13) }]).to_string(),
                tokens: 0,
            })
            .collect();
        store.turns_add(id, &turns).await.unwrap();
    }
    store.index_pending_turns().await.unwrap();
    drop(store);
    let db: u64 = ["", "-wal"]
        .iter()
        .filter_map(|x| std::fs::metadata(format!("{}{x}", c.db_path().display())).ok())
        .map(|m| m.len())
        .sum();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let t0 = Instant::now();
        let b = switchboard::backup::create(&c, &path, "bench")
            .await
            .unwrap();
        times.push(t0.elapsed());
        size = switchboard::backup::list(&c)
            .unwrap()
            .into_iter()
            .find(|x| x.path == b)
            .map_or(0, |x| x.bytes);
    }
    println!(
        "backup of 100,000 turns (database and WAL {:.1} MiB, search index included): median {:?} over 3, backup {:.1} MiB",
        mib(db),
        median(times),
        mib(size)
    );
}

fn logs() {
    use std::io::Write;
    let mb: u64 = std::env::var("BENCH_LOG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut total = 0u64;
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut n = 0u64;
    while total < mb << 20 {
        let f = logs.join(format!("switchboard.{day}.log"));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
        for _ in 0..1_000_000 {
            n += 1;
            let line = format!(
                "{day}T10:{:02}:{:02}.123+00:00  INFO inbound{{inbox={n} chat=telegram:{}}}:turn{{agent=jarvis session={}}}: answered in 812 ms tokens_in=1532 tokens_out=212\n",
                (n / 60) % 60,
                n % 60,
                n % 5000,
                n % 977
            );
            total += line.len() as u64;
            w.write_all(line.as_bytes()).unwrap();
            if total >= mb << 20 {
                break;
            }
        }
        w.flush().unwrap();
        day = day.succ_opt().unwrap();
    }
    let q = |grep: &str| switchboard::logging::read::Query {
        grep: Some(grep.into()),
        ..Default::default()
    };
    for (what, query) in [
        ("a rare chat (telegram:4242)", q("chat=telegram:4242}")),
        ("a text on no line", q("no such text anywhere")),
        (
            "--level warn (every line parsed)",
            switchboard::logging::read::Query {
                level: Some(tracing::Level::WARN),
                ..Default::default()
            },
        ),
    ] {
        let t0 = Instant::now();
        let found =
            switchboard::logging::read::run(&logs, &query, false, &mut std::io::sink()).unwrap();
        let el = t0.elapsed();
        println!(
            "logs over {:.0} MiB: {what}: {found} lines in {el:?} ({:.2} GB/s)",
            mib(total),
            total as f64 / el.as_secs_f64() / 1e9
        );
    }
}

async fn import() {
    let dir = tempfile::tempdir().unwrap();
    let oc = dir.path().join("openclaw");
    let ws = oc.join("workspace");
    std::fs::create_dir_all(ws.join("memory")).unwrap();
    std::fs::create_dir_all(ws.join("skills/weather")).unwrap();
    std::fs::create_dir_all(oc.join("cron")).unwrap();
    std::fs::write(
        oc.join("openclaw.json"),
        r#"// mine
{ agents: { defaults: { model: { primary: "anthropic/claude-sonnet-4-5" } }, list: [{ id: "main", default: true }, { id: "clu" }] },
  channels: { telegram: { botToken: "1:x", dmPolicy: "pairing", allowFrom: ["111"] }, discord: { token: "y" } } }"#,
    )
    .unwrap();
    for (f, t) in [
        ("IDENTITY.md", "# Friday\n"),
        ("SOUL.md", "Be kind.\n"),
        ("USER.md", "Sam.\n"),
        ("MEMORY.md", "- boat: Bluebird\n"),
        (
            "skills/weather/SKILL.md",
            "---\nname: weather\ndescription: w\n---\n",
        ),
    ] {
        std::fs::write(ws.join(f), t).unwrap();
    }
    for d in 1..=28 {
        std::fs::write(ws.join(format!("memory/2026-02-{d:02}.md")), "- a note\n").unwrap();
    }
    std::fs::write(
        oc.join("cron/jobs.json"),
        r#"{ "version": 1, "jobs": [
 { "name": "a", "schedule": { "kind": "cron", "expr": "0 7 * * *", "tz": "Europe/London" }, "payload": { "message": "m" }, "delivery": { "channel": "telegram", "to": "111" } },
 { "name": "b", "schedule": { "kind": "cron", "expr": "30 9 * * 1-5", "tz": "America/New_York" }, "payload": { "message": "m" } },
 { "name": "c", "schedule": { "kind": "cron", "expr": "0 18 * * 5", "tz": "Europe/London" }, "payload": { "message": "m" } } ] }"#,
    )
    .unwrap();
    let ours = dir.path().join("ours.json5");
    std::fs::write(
        &ours,
        format!(
            "{{ stateDir: \"{}\" }}\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let c = Config::load(&ours).ok();
    let plan = switchboard::import::openclaw::plan(&oc, c.as_ref()).unwrap();
    let planned = t0.elapsed();
    let done = switchboard::import::apply(&plan, &ours, chrono::Utc::now())
        .await
        .unwrap();
    println!(
        "import openclaw: plan {planned:?}, plan + apply {:?} ({} config keys, {} files, {} cron jobs, a backup first)",
        t0.elapsed(),
        done.config_keys,
        done.files,
        done.crons
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    backup().await;
    logs();
    import().await;
}
