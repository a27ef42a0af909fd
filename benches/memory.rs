//! Memory benchmark (prints figures): prompt assembly and memory search with 1,000 daily notes
//! and 100,000 stored turns, and the token cost of compacting a 60,000-token session.
//!
//! Run: `cargo bench --bench memory`.

use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::agent::{Agents, ToolHost, TurnContext};
use switchboard::config::Config;
use switchboard::providers::{
    Block, Message, Models, Provider, ProviderError, Request, Response, Usage,
};
use switchboard::store::{NewTurn, SessionKind, Store};

/// Answers at once and counts the tokens it was sent (the estimate the gateway itself uses).
#[derive(Default)]
struct Counting {
    input: Mutex<u64>,
    output: Mutex<u64>,
    calls: Mutex<u32>,
}

#[async_trait]
impl Provider for Counting {
    async fn complete(&self, req: &Request) -> Result<Response, ProviderError> {
        let tokens = switchboard::agent::tokens::estimate(&req.system, &req.messages);
        *self.input.lock() += tokens;
        *self.calls.lock() += 1;
        let text = if req.tools.is_empty() {
            "Summary: ".to_string()
                + &"the user and the assistant discussed plans, names and numbers. ".repeat(20)
        } else {
            "DONE".to_string()
        };
        *self.output.lock() += switchboard::agent::tokens::estimate_text(&text);
        Ok(Response {
            content: vec![Block::Text { text }],
            usage: Usage::default(),
        })
    }
}

struct NoHost;

#[async_trait]
impl ToolHost for NoHost {
    async fn spawn_task(
        &self,
        _: &TurnContext,
        _: Option<&str>,
        _: &str,
    ) -> Result<String, String> {
        Err("no".into())
    }
    async fn list_tasks(&self, _: &TurnContext) -> Result<String, String> {
        Ok(String::new())
    }
    async fn send_message(&self, _: &str, _: &str) -> Result<String, String> {
        Err("no".into())
    }
    async fn cron_add(
        &self,
        _: &TurnContext,
        _: switchboard::tools::CronRequest,
    ) -> Result<String, String> {
        Err("no".into())
    }
    async fn cron_list(&self, _: &TurnContext) -> Result<String, String> {
        Ok(String::new())
    }
    async fn cron_remove(&self, _: i64) -> Result<String, String> {
        Err("no".into())
    }
    async fn search_memory(&self, _: &TurnContext, _: &str) -> Result<String, String> {
        Ok(String::new())
    }
    async fn send_file(
        &self,
        _: &TurnContext,
        _: Option<&str>,
        _: &str,
        _: &str,
    ) -> Result<String, String> {
        Err("no".into())
    }
    async fn approve(&self, _: &TurnContext, _: &str, _: &serde_json::Value) -> Result<(), String> {
        Err("no".into())
    }
    async fn remember(&self, _: &TurnContext, _: &str, _: bool) -> Result<String, String> {
        Err("no".into())
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn turn(role: &'static str, text: String) -> NewTurn {
    NewTurn {
        role,
        content: serde_json::to_string(&vec![Block::Text { text }]).unwrap(),
        tokens: 0,
    }
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{ stateDir: "{}", timezone: "Europe/London", providers: {{ bench: {{ kind: "openai", baseUrl: "http://127.0.0.1:9/v1" }} }},
        models: {{ default: "bench/x" }}, agents: {{ jarvis: {{ coordinator: true }} }} }}"#,
        dir.path().display()
    );
    let config = Arc::new(Config::from_text(std::path::Path::new("b.json5"), &text).unwrap());
    let store = Store::open(&config.db_path()).unwrap();
    let counting = Arc::new(Counting::default());
    let mut models = Models::from_config(&config);
    models.set_provider("bench", counting.clone());
    let agents = Agents::new(
        config.clone(),
        Arc::new(models),
        store.clone(),
        switchboard::tools::mcp::Servers::none(),
    )
    .unwrap();
    let ws = agents.workspace("jarvis").unwrap().clone();

    // 1,000 daily notes of 20 lines, and a MEMORY.md of 200 facts.
    let day0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for d in 0..1000u64 {
        let day = day0 + chrono::Days::new(d);
        let body: String = (0..20)
            .map(|i| {
                format!(
                    "- 09:{i:02} note {d}-{i}: met {} about project {} budget {}\n",
                    ["Alice", "Bob", "Carol"][i % 3],
                    d % 37,
                    d * 7 + i as u64
                )
            })
            .collect();
        std::fs::write(ws.daily_path(day), format!("# {day}\n\n{body}")).unwrap();
    }
    for i in 0..200 {
        ws.remember(&format!(
            "fact {i}: the code for locker {i} is {}",
            1000 + i
        ))
        .unwrap();
    }
    // 100,000 turns: 1,000 sessions of 100.
    let t0 = Instant::now();
    let mut last_session = 0;
    for s in 0..1000 {
        let id = store
            .session_open(
                &format!("bench:{s}"),
                SessionKind::Main,
                "jarvis",
                Some("local:b"),
                None,
            )
            .await
            .unwrap();
        let turns: Vec<NewTurn> = (0..100)
            .map(|i| {
                if i % 2 == 0 {
                    turn(
                        "user",
                        format!("question {s}-{i} about invoice {} for Dana", s * 100 + i),
                    )
                } else {
                    turn(
                        "assistant",
                        format!("answer {s}-{i}: the invoice total is {} euros", i * 13),
                    )
                }
            })
            .collect();
        store.turns_add(id, &turns).await.unwrap();
        last_session = id;
    }
    println!("setup: 100,000 turns stored in {:?}", t0.elapsed());
    // Indexing them for search happens off the message path (a batch every half second in the
    // gateway); here all at once, to show what it costs.
    let t0 = Instant::now();
    let pending = store.index_pending_turns().await.unwrap();
    println!(
        "turn index: {pending} turns not yet indexed by the background thread, indexed in {:?}",
        t0.elapsed()
    );

    let t0 = Instant::now();
    let n = store.memory_index_files("jarvis", ws.root()).await.unwrap();
    println!(
        "memory index: {n} files indexed in {:?} (first time; later only changed files)",
        t0.elapsed()
    );

    let ctx = TurnContext {
        agent: "jarvis".into(),
        session: last_session,
        origin: Some("local:b".into()),
        thread: None,
        model: None,
        is_worker: false,
        sender: None,
        cancel: Default::default(),
        live: None,
        task: None,
        purpose: "chat",
    };
    let mut lat = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        let (prompt, history) = agents.assemble(&ctx).await.unwrap();
        lat.push(t0.elapsed());
        assert!(!prompt.is_empty() && history == 100);
    }
    lat.sort();
    println!(
        "prompt assembly (identity + memory + 2 notes + 100-turn history): p50 {:?}, p99 {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    let queries = [
        "invoice Dana 4242",
        "locker code 150",
        "Alice project budget",
        "euros total",
        "Carol 37",
    ];
    let mut lat = Vec::new();
    for i in 0..200 {
        let t0 = Instant::now();
        store.memory_index_files("jarvis", ws.root()).await.unwrap();
        let hits = store
            .memory_search("jarvis", queries[i % queries.len()], 15)
            .await
            .unwrap();
        lat.push(t0.elapsed());
        assert!(!hits.is_empty());
    }
    lat.sort();
    println!(
        "memory search (FTS5/BM25 over ~120,000 rows, incl. the changed-file check of 1,001 files): p50 {:?}, p99 {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    // A 60,000-token session.
    let id = store
        .session_open(
            "bench:compact",
            SessionKind::Main,
            "jarvis",
            Some("local:c"),
            None,
        )
        .await
        .unwrap();
    let para = "We talked about the renovation: the kitchen quote from Smith & Sons was 12,400 euros, delivery on the 14th, order ref K-2291. ".repeat(4);
    let mut turns = Vec::new();
    let mut tokens = 0;
    let mut i = 0;
    while tokens < 60_000 {
        let t = turn(
            if i % 2 == 0 { "user" } else { "assistant" },
            format!("{i}: {para}"),
        );
        tokens += switchboard::agent::tokens::estimate(
            "",
            &[Message {
                role: switchboard::providers::Role::User,
                content: vec![Block::Text {
                    text: format!("{i}: {para}"),
                }],
            }],
        );
        turns.push(t);
        i += 1;
    }
    store.turns_add(id, &turns).await.unwrap();
    let ctx = TurnContext {
        session: id,
        origin: Some("local:c".into()),
        ..ctx
    };
    let t0 = Instant::now();
    let summary = agents.compact(&ctx, &NoHost).await.unwrap();
    assert!(summary.is_some());
    println!(
        "compaction of a {tokens}-token session ({} turns): {} model calls, {} input tokens, {} output tokens, {:?} of our own time",
        turns.len(),
        counting.calls.lock(),
        counting.input.lock(),
        counting.output.lock(),
        t0.elapsed()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
