//! The store contract: every store method's promise, checked on both backends — the embedded
//! SQLite file and a real PostgreSQL (a throwaway cluster, see `support::postgres`). Each test is
//! one body run twice, `…::sqlite` and `…::postgres`.

use crate::support::postgres;
use switchboard::store::*;
use switchboard_channel::{Inbound, Target};

/// `contract!(name, body)`: `name::sqlite` and `name::postgres`, each running `body` on a fresh
/// store of that kind.
macro_rules! contract {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = switchboard::store::Store::open(&dir.path().join("db")).unwrap();
                super::$body(store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = super::postgres::database() else {
                    return;
                };
                let store = switchboard::store::Store::connect(&url).unwrap();
                super::$body(store).await;
            }
        }
    };
}

fn turn(role: &'static str, text: &str) -> NewTurn {
    NewTurn {
        role,
        content: serde_json::json!([{ "type": "text", "text": text }]).to_string(),
        tokens: 5,
    }
}

fn reply(target: &str, text: &str, key: &str) -> NewOutbox {
    NewOutbox {
        target: target.into(),
        text: text.into(),
        dedupe_key: Some(key.into()),
        ..Default::default()
    }
}

contract!(sessions_open_once_end_and_compact, sessions_body);
async fn sessions_body(s: Store) {
    let key = main_key("jarvis", "telegram:1", None);
    let a = s
        .session_open(&key, SessionKind::Main, "jarvis", Some("telegram:1"), None)
        .await
        .unwrap();
    let again = s
        .session_open(&key, SessionKind::Main, "jarvis", Some("telegram:1"), None)
        .await
        .unwrap();
    assert_eq!(a, again, "one live session per key");
    s.turns_add(a, &[turn("user", "hello"), turn("assistant", "hi there")])
        .await
        .unwrap();
    let turns = s.turns(a).await.unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0].role, "user");
    assert!(turns[1].content.contains("hi there"));
    let row = s.session_get(a).await.unwrap().unwrap();
    assert_eq!(
        (row.kind, row.agent.as_str(), row.turns),
        (SessionKind::Main, "jarvis", 2)
    );
    // Compaction keeps the rows but hides them from the context, and keeps the summary.
    s.session_compact(a, turns[0].id, "they said hello")
        .await
        .unwrap();
    assert_eq!(s.turns(a).await.unwrap().len(), 1);
    assert_eq!(
        s.session_summary(a).await.unwrap().as_deref(),
        Some("they said hello")
    );
    // Ending by prefix starts the next message fresh; other chats are untouched.
    let other = s
        .session_open(
            &main_key("jarvis", "telegram:2", None),
            SessionKind::Main,
            "jarvis",
            Some("telegram:2"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s.sessions_end("jarvis|telegram:1|").await.unwrap(), 1);
    let fresh = s
        .session_open(&key, SessionKind::Main, "jarvis", Some("telegram:1"), None)
        .await
        .unwrap();
    assert_ne!(fresh, a);
    let live: Vec<i64> = s
        .sessions_live()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(live, vec![other, fresh]);
    assert_eq!(s.open_sessions().await.unwrap().len(), 2);
    assert_eq!(s.sessions_end_ids(&[other, other]).await.unwrap(), 1);
    s.session_end(fresh).await.unwrap();
    assert!(s.sessions_live().await.unwrap().is_empty());
    assert_eq!(s.counts().await.unwrap().sessions, 0);
}

contract!(
    inbox_is_answered_once_with_turns_reply_and_previews,
    inbox_body
);
async fn inbox_body(s: Store) {
    // The statements of a message, compiled at start-up, compile on this schema; what follows
    // runs on them.
    s.prepare_message_path().await.unwrap();
    let m = |id: &str| Inbound::direct(Target::new("telegram", "7"), "u", id, "hi");
    let first = s.inbox_insert_many(&[m("1"), m("2")]).await.unwrap();
    assert!(first.iter().all(Option::is_some));
    // The same page again (after a crash before the offset moved), plus a new one.
    let again = s
        .inbox_insert_many(&[m("1"), m("2"), m("3")])
        .await
        .unwrap();
    assert_eq!((again[0], again[1]), (None, None));
    assert!(again[2].is_some());
    let pending = s.inbox_pending().await.unwrap();
    let ids: Vec<&str> = pending
        .iter()
        .map(|r| r.message.message_id.as_str())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(s.counts().await.unwrap().inbox_pending, 3);

    let session = s
        .session_open(
            "jarvis|telegram:7|",
            SessionKind::Main,
            "jarvis",
            Some("telegram:7"),
            None,
        )
        .await
        .unwrap();
    let inbox = pending[0].id;
    // A half-finished handling wrote turns; they are discarded before the retry.
    s.preview_posted(inbox, 0, "m-100").await.unwrap();
    s.preview_posted(inbox, 1, "m-101").await.unwrap();
    s.preview_posted(inbox, 1, "m-102").await.unwrap();
    assert_eq!(s.previews(inbox).await.unwrap(), ["m-100", "m-102"]);
    let turns = [turn("user", "hi"), turn("assistant", "hello!")];
    let out = s
        .inbox_finish(
            inbox,
            Some((session, &turns)),
            Some(&reply("telegram:7", "hello!", &format!("reply:{inbox}"))),
            Some((session, 1234)),
        )
        .await
        .unwrap()
        .expect("the reply is stored");
    // Finishing twice stores nothing twice.
    assert_eq!(
        s.inbox_finish(
            inbox,
            Some((session, &turns)),
            Some(&reply("telegram:7", "hello!", &format!("reply:{inbox}"))),
            None
        )
        .await
        .unwrap()
        .map(|r| r.id),
        None
    );
    assert_eq!(s.turns(session).await.unwrap().len(), 2);
    let row = s.outbox_get(out.id).await.unwrap().unwrap();
    // What finishing returned is what delivery would have read back.
    assert_eq!(format!("{row:?}"), format!("{out:?}"));
    assert_eq!(row.text, "hello!");
    assert_eq!(
        row.edits,
        ["m-100", "m-102"],
        "the preview is replaced in place"
    );
    assert!(s.previews(inbox).await.unwrap().is_empty());
    assert_eq!(s.inbox_pending().await.unwrap().len(), 2);

    // A retried handling starts clean: its partial turns go.
    let second = pending[1].id;
    s.turns_add(session, &[turn("user", "partial")])
        .await
        .unwrap();
    assert_eq!(s.inbox_discard_partial(second).await.unwrap(), 0);
    assert_eq!(
        s.inbox_finish(second, None, None, None)
            .await
            .unwrap()
            .map(|r| r.id),
        None,
        "no reply, nothing in the outbox"
    );
}

contract!(outbox_delivers_each_message_once, outbox_body);
async fn outbox_body(s: Store) {
    let id = s
        .outbox_enqueue(&NewOutbox {
            target: "discord:9".into(),
            thread: Some("t1".into()),
            reply_to: Some("55".into()),
            text: "a long reply".into(),
            dedupe_key: Some("task:1".into()),
            file: Some(OutboxFile {
                path: "/tmp/x.png".into(),
                name: "x.png".into(),
                mime: "image/png".into(),
                voice: None,
            }),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.outbox_enqueue(&reply("discord:9", "again", "task:1"))
            .await
            .unwrap(),
        None,
        "one message per cause"
    );
    let pending = s.outbox_pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].thread.as_deref(), Some("t1"));
    assert_eq!(
        pending[0].file.as_ref().map(|f| f.name.as_str()),
        Some("x.png")
    );
    s.outbox_failed_attempt(id, "429", false).await.unwrap();
    s.outbox_progress(id, 1, false).await.unwrap();
    let row = s.outbox_get(id).await.unwrap().unwrap();
    assert_eq!(
        (row.attempts, row.parts_sent, row.status),
        (1, 1, OutboxStatus::Pending)
    );
    s.outbox_progress(id, 2, true).await.unwrap();
    assert_eq!(
        s.outbox_get(id).await.unwrap().unwrap().status,
        OutboxStatus::Sent
    );
    assert!(s.outbox_pending().await.unwrap().is_empty());
    let other = s
        .outbox_enqueue(&reply("discord:9", "no", "reply:77"))
        .await
        .unwrap()
        .unwrap();
    s.outbox_failed_attempt(other, "403 forbidden", true)
        .await
        .unwrap();
    assert_eq!(
        s.outbox_get(other).await.unwrap().unwrap().status,
        OutboxStatus::Failed
    );
    assert_eq!(s.counts().await.unwrap().outbox_pending, 0);
}

contract!(a_task_reports_exactly_once, tasks_body);
async fn tasks_body(s: Store) {
    let requester = s
        .session_open(
            "jarvis|telegram:1|",
            SessionKind::Main,
            "jarvis",
            Some("telegram:1"),
            None,
        )
        .await
        .unwrap();
    let t = s
        .task_create("clu", "fix the build", "telegram:1", None, Some(requester))
        .await
        .unwrap();
    assert_eq!(s.tasks_active().await.unwrap().len(), 1);
    let worker = s
        .session_open(&format!("task:{t}"), SessionKind::Task, "clu", None, None)
        .await
        .unwrap();
    assert!(s.task_start(t, worker).await.unwrap());
    assert!(!s.task_start(t, worker).await.unwrap(), "started once");
    let report = reply("telegram:1", "CLU: done", &format!("task:{t}"));
    let turns = [turn("assistant", "fixed it")];
    let out = s
        .task_finish(
            t,
            TaskStatus::Done,
            "fixed it",
            &report,
            Some((requester, "CLU finished: fixed it")),
            Some((worker, &turns)),
        )
        .await
        .unwrap();
    assert!(out.is_some());
    assert_eq!(
        s.task_finish(t, TaskStatus::Failed, "late", &report, None, None)
            .await
            .unwrap(),
        None,
        "a result is reported once"
    );
    let row = s.task_get(t).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.result.as_deref()),
        (TaskStatus::Done, Some("fixed it"))
    );
    assert!(s.tasks_active().await.unwrap().is_empty());
    assert_eq!(s.tasks_recent(Some("telegram:1")).await.unwrap().len(), 1);
    assert!(s.tasks_recent(Some("telegram:2")).await.unwrap().is_empty());
    // The requester heard about it.
    assert!(
        s.turns(requester).await.unwrap()[0]
            .content
            .contains("CLU finished")
    );
    assert_eq!(s.counts().await.unwrap().tasks_active, 0);
}

contract!(a_cron_slot_fires_once, cron_body);
async fn cron_body(s: Store) {
    let job = NewJob {
        name: "check-in".into(),
        schedule: "0 9 * * *".into(),
        tz: "Europe/London".into(),
        agent: "jarvis".into(),
        message: "morning".into(),
        target: Some("discord:5".into()),
        next_run: Some(1_000),
    };
    let id = s.cron_add(&job).await.unwrap();
    assert_eq!(s.cron_next_wake().await.unwrap(), Some(1_000));
    assert_eq!(s.cron_due(999).await.unwrap().len(), 0);
    assert_eq!(s.cron_due(1_000).await.unwrap()[0].id, id);
    let run = s.cron_claim(id, 1_000, Some(2_000), false).await.unwrap();
    assert!(run.is_some());
    assert_eq!(
        s.cron_claim(id, 1_000, Some(2_000), false).await.unwrap(),
        None,
        "a slot fires once"
    );
    assert_eq!(
        s.cron_claim(id, 2_000, Some(3_000), true).await.unwrap(),
        None
    );
    let run = run.unwrap();
    let session = s
        .session_open(
            "cron:1",
            SessionKind::Cron,
            "jarvis",
            Some("discord:5"),
            None,
        )
        .await
        .unwrap();
    let turns = [turn("assistant", "good morning")];
    let post = reply("discord:5", "good morning", "cron:1:1000");
    s.cron_finish(
        run,
        "error",
        None,
        Some("model down"),
        Some(1_500),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.cron_runs_to_resume(1_499, false).await.unwrap().len(), 0);
    let retry = s.cron_runs_to_resume(1_500, false).await.unwrap();
    assert_eq!((retry.len(), retry[0].attempts), (1, 1));
    assert!(s.cron_restart(run).await.unwrap());
    assert!(!s.cron_restart(run).await.unwrap());
    assert_eq!(s.cron_runs_to_resume(0, true).await.unwrap().len(), 1);
    let out = s
        .cron_finish(
            run,
            "ok",
            Some("good morning"),
            None,
            None,
            Some((session, &turns)),
            Some(&post),
        )
        .await
        .unwrap();
    assert!(out.is_some());
    let history = s.cron_history(id, 10).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|r| r.status.as_str())
            .collect::<Vec<_>>(),
        ["skipped", "ok"]
    );
    let listed = s.cron_jobs(Some("discord:5")).await.unwrap();
    assert_eq!(listed[0].last_status.as_deref(), Some("skipped"));
    assert!(listed[0].enabled);
    assert!(s.cron_jobs(Some("discord:6")).await.unwrap().is_empty());
    assert!(s.cron_set_enabled(id, false, None).await.unwrap());
    assert!(!s.cron_job(id).await.unwrap().unwrap().enabled);
    assert_eq!(s.cron_next_wake().await.unwrap(), None);
    let manual = s.cron_claim_manual(id, 42).await.unwrap();
    assert!(manual.is_some());
    assert_eq!(
        s.cron_run_get(manual.unwrap()).await.unwrap().unwrap().slot,
        42
    );
    assert!(
        s.cron_update(
            id,
            &NewJob {
                name: "renamed".into(),
                ..job.clone()
            },
            true
        )
        .await
        .unwrap()
    );
    let health = s.cron_health().await.unwrap();
    assert_eq!(health.jobs, 1);
    assert_eq!(health.last_run.map(|(_, st)| st), Some("ok".to_string()));
    assert!(s.cron_remove(id).await.unwrap());
    assert!(!s.cron_remove(id).await.unwrap());
    s.cron_add(&job).await.unwrap();
    assert_eq!(s.cron_clear().await.unwrap(), 1);
}

contract!(
    an_approval_is_answered_once_reused_until_used_and_expires,
    approvals_body
);
async fn approvals_body(store: Store) {
    let new = |ttl_ms| NewApproval {
        session: 7,
        agent: "jarvis",
        target: Some("telegram:1"),
        thread: None,
        requester: Some("1"),
        tool: "exec",
        args: "{\"command\":\"ls\"}",
        ttl_ms,
    };
    let a = store.approval_create(&new(60_000)).await.unwrap();
    assert_eq!(a.status, ApprovalStatus::Pending);
    let again = store
        .approval_reusable(7, "exec", &a.args)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, a.id);
    assert!(
        store
            .approval_reusable(7, "exec", "{}")
            .await
            .unwrap()
            .is_none()
    );
    store.approval_set_message(a.id, "m-9").await.unwrap();
    let d = store
        .approval_decide(a.id, true, false, "Ann")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.status, d.message_id.as_deref()),
        (ApprovalStatus::Approved, Some("m-9"))
    );
    assert!(
        store
            .approval_decide(a.id, false, false, "Bob")
            .await
            .unwrap()
            .is_none()
    );
    // Approved but not used: still what the call finds; once used, not.
    assert!(
        store
            .approval_reusable(7, "exec", &a.args)
            .await
            .unwrap()
            .is_some()
    );
    store.approval_consume(a.id).await.unwrap();
    assert!(
        store
            .approval_reusable(7, "exec", &a.args)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.approval_granted(7, "exec").await.unwrap());

    let s = store.approval_create(&new(60_000)).await.unwrap();
    store
        .approval_decide(s.id, true, true, "Ann")
        .await
        .unwrap();
    assert!(store.approval_granted(7, "exec").await.unwrap());

    let e = store.approval_create(&new(-1)).await.unwrap();
    assert!(
        store
            .approval_decide(e.id, true, false, "Ann")
            .await
            .unwrap()
            .is_none()
    );
    let expired = store.approvals_expire(None).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        store.approval(e.id).await.unwrap().unwrap().status,
        ApprovalStatus::Expired
    );
    assert_eq!(store.approvals_list(true).await.unwrap().len(), 0);
    assert_eq!(store.approvals_list(false).await.unwrap().len(), 3);
}

contract!(
    a_heartbeat_slot_runs_once_and_the_history_is_kept,
    heartbeat_body
);
async fn heartbeat_body(s: Store) {
    let id = s.heartbeat_claim(1_000, None).await.unwrap().unwrap();
    assert_eq!(s.heartbeat_claim(1_000, None).await.unwrap(), None);
    assert!(
        s.heartbeat_claim(2_000, Some("outside active hours"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.heartbeat_last_slot().await.unwrap(), Some(2_000));
    s.heartbeat_finish(id, "ok", Some("HEARTBEAT_OK"), None)
        .await
        .unwrap();
    let runs = s.heartbeat_runs(10).await.unwrap();
    assert_eq!(runs[0].status, "skipped");
    assert_eq!(runs[1].status, "ok");
    let id3 = s.heartbeat_claim(3_000, None).await.unwrap().unwrap();
    assert_eq!(s.heartbeat_interrupted().await.unwrap(), 1);
    assert_eq!(s.heartbeat_runs(1).await.unwrap()[0].id, id3);
    assert_eq!(s.heartbeat_runs(1).await.unwrap()[0].status, "interrupted");
}

contract!(
    a_notice_cause_is_claimed_once_per_window_or_once_ever,
    notices_body
);
async fn notices_body(s: Store) {
    let hour = 3_600_000;
    assert!(
        s.notice_claim("provider:anthropic:auth", 0, Some(hour))
            .await
            .unwrap()
    );
    assert!(
        !s.notice_claim("provider:anthropic:auth", hour - 1, Some(hour))
            .await
            .unwrap()
    );
    assert!(
        s.notice_claim("provider:moonshot:auth", 5, Some(hour))
            .await
            .unwrap()
    );
    assert!(
        s.notice_claim("provider:anthropic:auth", hour, Some(hour))
            .await
            .unwrap()
    );
    assert!(
        s.notice_claim("budget:daily:2026-12-03", 0, None)
            .await
            .unwrap()
    );
    assert!(
        !s.notice_claim("budget:daily:2026-12-03", 10 * hour, None)
            .await
            .unwrap()
    );
}

fn call(at: i64, agent: &str, chat: Option<&str>, cost: i64) -> NewUsage {
    NewUsage {
        at,
        provider: "anthropic".into(),
        model: "claude-sonnet-4-20250514".into(),
        input: 100,
        output: 10,
        cache_read: 5,
        cost_micros: cost,
        priced: true,
        agent: agent.into(),
        chat: chat.map(str::to_string),
        purpose: "chat".into(),
        ..Default::default()
    }
}

contract!(usage_is_summed_by_range_chat_and_group, usage_body);
async fn usage_body(s: Store) {
    s.usage_record(&call(1_000, "jarvis", Some("telegram:1"), 300))
        .await
        .unwrap();
    s.usage_record(&call(2_000, "clu", Some("telegram:2"), 700))
        .await
        .unwrap();
    s.usage_record_queued(NewUsage {
        priced: false,
        ..call(3_000, "jarvis", None, 0)
    })
    .unwrap();
    // A queued record is there for whoever reads after a later write returned.
    s.notice_claim("flush", 0, None).await.unwrap();
    let all = s.usage_total(0, 10_000, None).await.unwrap();
    assert_eq!(
        (
            all.calls,
            all.input,
            all.output,
            all.cache_read,
            all.cost_micros,
            all.unpriced
        ),
        (3, 300, 30, 15, 1_000, 1)
    );
    assert_eq!(
        s.usage_total(0, 10_000, Some("telegram:2"))
            .await
            .unwrap()
            .calls,
        1
    );
    assert_eq!(s.usage_total(1_500, 10_000, None).await.unwrap().calls, 2);
    let by = s.usage_report(0, 10_000, UsageBy::Agent).await.unwrap();
    assert_eq!((by[0].key.as_str(), by[0].cost_micros), ("clu", 700));
    assert_eq!((by[1].key.as_str(), by[1].calls), ("jarvis", 2));
    let chats = s.usage_report(0, 10_000, UsageBy::Chat).await.unwrap();
    assert!(chats.iter().any(|l| l.key == "(chat)"), "{chats:?}");
    let models = s.usage_report(0, 10_000, UsageBy::Model).await.unwrap();
    assert_eq!(models[0].key, "anthropic/claude-sonnet-4-20250514");
    // What budgets start from: today's spending (from 1,500) and the month's (from 0), per agent.
    let mut costs: Vec<(String, i64, i64)> = s
        .usage_cost_by_agent(1_500, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.agent, a.day_micros, a.month_micros))
        .collect();
    costs.sort();
    assert_eq!(
        costs,
        vec![("clu".into(), 700, 700), ("jarvis".into(), 0, 300)]
    );
    let mut late = s.usage_cost_by_agent(2_500, 1_500).await.unwrap();
    late.sort_by(|a, b| a.agent.cmp(&b.agent));
    let late: Vec<_> = late
        .iter()
        .map(|a| (a.agent.as_str(), a.day_micros, a.month_micros))
        .collect();
    assert_eq!(late, vec![("clu", 0, 700), ("jarvis", 0, 0)]);
}

contract!(memory_search_finds_files_and_turns_best_first, memory_body);
async fn memory_body(store: Store) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("memory")).unwrap();
    std::fs::write(
        root.path().join("MEMORY.md"),
        "# Facts\n- Alice's birthday is on March 3\n- The gate code is 4417\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("memory/2026-12-01.md"),
        "- Bought a birthday cake\n",
    )
    .unwrap();
    assert_eq!(
        store
            .memory_index_files("jarvis", root.path())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .memory_index_files("jarvis", root.path())
            .await
            .unwrap(),
        0
    );
    // Every word first, stemmed ("birthdays" finds "birthday").
    let hits = store
        .memory_search("jarvis", "Alice birthdays?", 5)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].source, "MEMORY.md");
    assert!(hits[0].text.starts_with("Alice's birthday"));
    // No line has every word: lines with any of them.
    let any = store.memory_search("jarvis", "cake gate", 5).await.unwrap();
    assert_eq!(any.len(), 2, "{any:?}");
    // A hand edit is re-indexed (a different size, so no clock tick is needed).
    std::fs::write(
        root.path().join("MEMORY.md"),
        "- The gate code is now 9120\n",
    )
    .unwrap();
    assert_eq!(
        store
            .memory_index_files("jarvis", root.path())
            .await
            .unwrap(),
        1
    );
    let gate = store.memory_search("jarvis", "gate code", 5).await.unwrap();
    assert_eq!(gate.len(), 1);
    assert!(gate[0].text.contains("9120"));
    assert!(
        store
            .memory_search("jarvis", "*** ()", 5)
            .await
            .unwrap()
            .is_empty()
    );

    // Conversation turns are found at once, once each, and only for their agent.
    let s = store
        .session_open("jarvis|local:x|", SessionKind::Main, "jarvis", None, None)
        .await
        .unwrap();
    store
        .turns_add(
            s,
            &[
                turn("user", "the boat is moored at pier 12"),
                turn("assistant", "noted"),
            ],
        )
        .await
        .unwrap();
    let hits = store.memory_search("jarvis", "boat pier", 5).await.unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].source, format!("conversation {s}"));
    assert_eq!(store.index_pending_turns().await.unwrap(), 0);
    store
        .turns_add(s, &[turn("user", "the boat moved")])
        .await
        .unwrap();
    assert_eq!(
        store
            .memory_search("jarvis", "boat", 5)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .memory_search("clu", "boat", 5)
            .await
            .unwrap()
            .is_empty()
    );
}

contract!(pairing_codes_are_approved_denied_and_revoked, pairing_body);
async fn pairing_body(s: Store) {
    assert!(!s.is_allowed("telegram", "42").await.unwrap());
    let code = match s
        .pairing_request("telegram", "42", Some("Ann"), "ABC123", 60_000, 3)
        .await
        .unwrap()
    {
        PairingOutcome::NewCode(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        s.pairing_request("telegram", "42", None, "ZZZ999", 60_000, 3)
            .await
            .unwrap(),
        PairingOutcome::AlreadyPending
    );
    s.pairing_request("telegram", "43", None, "DEF456", 60_000, 2)
        .await
        .unwrap();
    assert_eq!(
        s.pairing_request("telegram", "44", None, "GHI789", 60_000, 2)
            .await
            .unwrap(),
        PairingOutcome::TooManyPending
    );
    let (pending, allowed) = s.pairing_list().await.unwrap();
    assert_eq!((pending.len(), allowed.len()), (2, 0));
    let ok = s
        .pairing_approve("telegram", &code.to_lowercase())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ok.sender.as_str(), ok.name.as_deref()),
        ("42", Some("Ann"))
    );
    assert!(s.is_allowed("telegram", "42").await.unwrap());
    assert!(
        s.pairing_approve("telegram", &code)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.pairing_deny("telegram", "DEF456").await.unwrap());
    assert!(!s.pairing_deny("telegram", "DEF456").await.unwrap());
    assert!(s.pairing_revoke("telegram", "42").await.unwrap());
    assert!(!s.is_allowed("telegram", "42").await.unwrap());
}

contract!(chat_choices_are_kept_and_cleared, prefs_body);
async fn prefs_body(s: Store) {
    assert_eq!(s.chat_agent("telegram:1").await.unwrap(), None);
    s.set_chat_agent("telegram:1", "clu").await.unwrap();
    s.set_chat_model("telegram:1", Some("openai/gpt-test"))
        .await
        .unwrap();
    assert_eq!(
        s.chat_agent("telegram:1").await.unwrap().as_deref(),
        Some("clu")
    );
    assert_eq!(
        s.chat_model("telegram:1").await.unwrap().as_deref(),
        Some("openai/gpt-test")
    );
    s.chat_pref_clear("telegram:1", true, false).await.unwrap();
    assert_eq!(s.chat_agent("telegram:1").await.unwrap(), None);
    assert_eq!(s.chat_prefs().await.unwrap().len(), 1);
    s.chat_pref_clear("telegram:1", false, true).await.unwrap();
    assert!(
        s.chat_prefs().await.unwrap().is_empty(),
        "a row with neither goes"
    );
}

contract!(
    the_schema_is_current_and_bad_input_is_stored_as_given,
    schema_body
);
async fn schema_body(s: Store) {
    assert!(s.schema_version().await.unwrap() >= 1);
    // Quotes, question marks, dollar signs and non-ASCII text are data, not SQL.
    let text = "it's ?1 or $1 -- ünïcödé 🎉 'quoted' \"double\"";
    let id = s
        .outbox_enqueue(&reply("telegram:1", text, "reply:odd"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.outbox_get(id).await.unwrap().unwrap().text, text);
}

/// Two gateways' handles on one database: `a:1` and `b:2`.
async fn cluster_body(a: Store, b: Store) {
    let (a, b) = (a.with_instance("a:1"), b.with_instance("b:2"));
    a.instance_join(11, "test").await.unwrap();
    b.instance_join(22, "test").await.unwrap();
    assert!(a.instance_beat().await.unwrap());
    let ttl = 5_000;
    // A chat is held by one live gateway at a time.
    assert!(a.lease_take("chat:telegram:1", ttl).await.unwrap());
    assert!(!b.lease_take("chat:telegram:1", ttl).await.unwrap());
    assert!(a.lease_take("chat:telegram:1", ttl).await.unwrap());
    // What b stores for a's chat is a's to answer; a free chat's message is its receiver's, and
    // anyone's once it has waited.
    let m = |chat: &str, id: &str| Inbound::direct(Target::new("telegram", chat), "u", id, "hi");
    b.inbox_insert_many(&[m("1", "10"), m("2", "20")])
        .await
        .unwrap();
    let ids = |rows: Vec<(i64, String, String)>| -> Vec<String> {
        rows.into_iter()
            .map(|(_, chat, payload)| {
                let m: Inbound = serde_json::from_str(&payload).unwrap();
                assert_eq!(m.chat.to_string(), chat);
                m.message_id
            })
            .collect()
    };
    assert_eq!(ids(a.inbox_claimable(ttl, 0, 100).await.unwrap()), ["10"]);
    assert_eq!(ids(b.inbox_claimable(ttl, 0, 100).await.unwrap()), ["20"]);
    let later = now_ms() + 1_000;
    assert_eq!(
        ids(a.inbox_claimable(ttl, later, 100).await.unwrap()),
        ["10", "20"]
    );
    let chat2: Vec<i64> = b
        .inbox_pending_in("telegram:2")
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(chat2.len(), 1);
    // Replies and tasks belong to their maker while it lives; a dead maker's are adopted once.
    let out = a
        .outbox_enqueue(&reply("telegram:1", "from a", "reply:a"))
        .await
        .unwrap()
        .unwrap();
    let task = a
        .task_create("clu", "work", "telegram:1", None, None)
        .await
        .unwrap();
    assert_eq!(
        b.outbox_adopt(ttl, false).await.unwrap(),
        Adopted::default()
    );
    assert!(b.tasks_adopt(ttl, false).await.unwrap().is_empty());
    // With a zero time to live every other gateway counts as dead.
    // ...with its chat: the next answer there is b's, and must go out after it.
    assert_eq!(
        b.outbox_adopt(0, false).await.unwrap(),
        Adopted {
            replies: vec![(out, "telegram:1".to_string())],
            chats: vec!["telegram:1".to_string()],
        }
    );
    assert_eq!(
        b.outbox_adopt(0, false).await.unwrap(),
        Adopted::default(),
        "adopted once"
    );
    assert_eq!(b.tasks_adopt(0, false).await.unwrap()[0].id, task);
    assert!(b.tasks_adopt(0, false).await.unwrap().is_empty());
    // A restarted gateway takes its own back.
    assert_eq!(b.outbox_adopt(ttl, true).await.unwrap().replies.len(), 1);
    // `gateway status`: both alive, with what each holds (chat 1 went to b with its reply).
    assert!(a.lease_take("chat:telegram:3", ttl).await.unwrap());
    let all = a.instances(ttl).await.unwrap();
    assert_eq!(all.len(), 2);
    let first = all.iter().find(|i| i.id == "a:1").unwrap();
    assert!(first.alive);
    assert_eq!((first.pid, first.chats), (Some(11), 1));
    assert!(b.lease_take("role:scheduler", ttl).await.unwrap());
    let second = a.instances(ttl).await.unwrap();
    let second = second.iter().find(|i| i.id == "b:2").unwrap();
    assert_eq!(
        (second.roles.as_slice(), second.chats),
        (&["scheduler".to_string()][..], 1)
    );
    // Leaving hands the chats over at once.
    a.instance_leave().await.unwrap();
    assert!(b.lease_take("chat:telegram:3", ttl).await.unwrap());
    b.lease_drop("role:scheduler").await.unwrap();
    assert!(a.lease_take("role:scheduler", ttl).await.unwrap());
}

/// Three gateways' handles on one database: `a:1` dies holding two chats with replies
/// undelivered; `b:2` and `c:3` live on. A chat's undelivered replies go to whoever takes the
/// chat, in the same step, so they are queued before that gateway answers the chat again.
async fn replies_follow_chats_body(a: Store, b: Store, c: Store) {
    let (a, b, c) = (
        a.with_instance("a:1"),
        b.with_instance("b:2"),
        c.with_instance("c:3"),
    );
    for (s, pid) in [(&a, 1), (&b, 2), (&c, 3)] {
        s.instance_join(pid, "test").await.unwrap();
    }
    let ttl = 5_000;
    for chat in ["telegram:1", "telegram:2"] {
        assert!(a.lease_take(&format!("chat:{chat}"), ttl).await.unwrap());
    }
    let mut replies = Vec::new();
    for (n, chat) in ["telegram:1", "telegram:2", "telegram:1"]
        .iter()
        .enumerate()
    {
        let id = a
            .outbox_enqueue(&reply(chat, "from a", &format!("reply:a{n}")))
            .await
            .unwrap()
            .unwrap();
        replies.push((id, chat.to_string()));
    }
    // While a lives its chats and replies are its own.
    assert_eq!(b.chat_take("telegram:1", ttl).await.unwrap(), None);
    assert_eq!(
        b.outbox_adopt(ttl, false).await.unwrap(),
        Adopted::default()
    );
    // a falls silent; b and c are seen since. (Only what is silent longer than `dead` is dead.)
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(b.instance_beat().await.unwrap());
    assert!(c.instance_beat().await.unwrap());
    let dead = 1_200;
    // Taking chat 1 brings its two replies, oldest first; chat 2's stay.
    assert_eq!(
        b.chat_take("telegram:1", dead).await.unwrap(),
        Some(vec![replies[0].clone(), replies[2].clone()])
    );
    assert_eq!(
        c.chat_take("telegram:1", dead).await.unwrap(),
        None,
        "b's now"
    );
    // c adopts what is left, and takes chat 2 with it: not chat 1's replies, which are b's.
    assert_eq!(
        c.outbox_adopt(dead, false).await.unwrap(),
        Adopted {
            replies: vec![replies[1].clone()],
            chats: vec!["telegram:2".to_string()],
        }
    );
    assert!(!b.lease_take("chat:telegram:2", dead).await.unwrap());
    // A dead gateway's reply in a chat a live gateway holds waits for that gateway.
    let late = a
        .outbox_enqueue(&reply("telegram:1", "late from a", "reply:late"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.outbox_adopt(dead, false).await.unwrap(),
        Adopted::default()
    );
    assert_eq!(
        b.outbox_adopt(dead, false).await.unwrap(),
        Adopted {
            replies: vec![(late, "telegram:1".to_string())],
            chats: vec![],
        }
    );
}

mod a_dead_gateways_replies_go_with_its_chats {
    use switchboard::store::Store;

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let open = || Store::open(&path).unwrap();
        super::replies_follow_chats_body(open(), open(), open()).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(url) = super::postgres::database() else {
            return;
        };
        let open = || Store::connect(&url).unwrap();
        super::replies_follow_chats_body(open(), open(), open()).await;
    }
}

mod leases_and_adoption_between_two_gateways {
    use switchboard::store::Store;

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let a = Store::open(&path).unwrap();
        let b = Store::open(&path).unwrap();
        super::cluster_body(a, b).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(url) = super::postgres::database() else {
            return;
        };
        super::cluster_body(Store::connect(&url).unwrap(), Store::connect(&url).unwrap()).await;
    }
}
