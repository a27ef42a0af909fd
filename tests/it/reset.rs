//! `switchboard reset`: a backup of config, memory files and database first, then sessions, cron
//! jobs or everything start over; `--all` is refused while a gateway runs on the state.

use crate::support::gateway::count;
use crate::support::*;
use std::path::PathBuf;

fn backups(gw: &TestGateway) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(gw.dir.path().join("state/backups"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_backs_up_first_then_sessions_crons_or_everything_start_over() {
    let model = FakeModel::start().await;
    let mut gw = TestGateway::start(&model, "").await;
    assert_eq!(
        gw.chat("c", "remember the boat is blue").await,
        "echo: remember the boat is blue"
    );
    let out = gw
        .cli(&["cron", "add", "0 9 * * *", "check-in", "--to", "local:c"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));

    // Nothing said: a usage error, and no backup.
    let out = gw.cli(&["reset"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(backups(&gw).is_empty());

    // Sessions, through the running gateway: the chat starts fresh.
    let out = gw.cli(&["reset", "--sessions"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let b = backups(&gw);
    assert_eq!(b.len(), 1);
    assert!(
        b[0].join(gw.config.file_name().unwrap()).exists(),
        "config backed up"
    );
    assert!(b[0].join("agents/jarvis/MEMORY.md").exists());
    assert_eq!(
        count(
            &b[0].join("switchboard.db"),
            "SELECT count(*) FROM sessions WHERE ended_at IS NULL"
        ),
        1,
        "the backup holds the session as it was"
    );
    assert_eq!(
        gw.db()
            .query_row(
                "SELECT count(*) FROM sessions WHERE ended_at IS NULL",
                [],
                |r| r.get::<_, i64>(0)
            )
            .unwrap(),
        0
    );
    gw.chat("c", "hello again").await;
    let turns: i64 = gw
        .db()
        .query_row(
            "SELECT count(*) FROM turns t JOIN sessions s ON s.id = t.session_id WHERE s.ended_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(turns, 2, "a fresh session: only the new exchange");

    // Cron jobs.
    let out = gw.cli(&["reset", "--crons"]).await;
    assert!(
        stdout(&out).contains("removed 1 cron job(s)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(backups(&gw).len(), 2);
    assert_eq!(
        count(
            &backups(&gw)[1].join("switchboard.db"),
            "SELECT count(*) FROM cron_jobs"
        ),
        1
    );

    // Everything: refused while the gateway runs; done once it is stopped.
    let out = gw.cli(&["reset", "--all"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stop it first"), "{}", stderr(&out));
    assert_eq!(backups(&gw).len(), 2, "refused before any backup");
    gw.stop("TERM").await;
    let out = gw.cli(&["reset", "--all"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!gw.dir.path().join("state/switchboard.db").exists());
    assert!(!gw.workspace("jarvis").exists());
    let last = backups(&gw).pop().unwrap();
    assert!(last.join("agents/jarvis/IDENTITY.md").exists());
    // The next start is a first start, and it works.
    gw.restart().await;
    assert_eq!(gw.chat("c", "fresh?").await, "echo: fresh?");
}
