//! The schema, as an append-only list of migrations (tracked in SQLite's `user_version` by
//! `rusqlite_migration`). Never edit a released migration: add the next one, so a database from
//! any earlier version upgrades in place and no state is lost on upgrade.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

const ALL: [&str; 11] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11];

pub fn migrations() -> Migrations<'static> {
    Migrations::new(ALL.iter().map(|sql| M::up(sql)).collect())
}

/// What every migration adds up to, for a new database: `schema.sql` creates it in one
/// transaction, ~3 ms faster than running eleven migrations (each ALTER makes SQLite read the
/// whole schema again), which is most of a first start. `fresh_schema_is_the_migrations` holds
/// it equal, statement for statement and row for row, to what the migrations build; after
/// adding a migration, run that test with `SWITCHBOARD_BLESS=1` to write it again.
const SCHEMA: &str = include_str!("schema.sql");

/// Brings the database on `conn` to the latest schema: a new (empty) database is created from
/// [`SCHEMA`] in one go, any other is migrated from its version.
pub fn create_or_migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if version != 0 || objects != 0 {
        return migrations().to_latest(conn);
    }
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", latest_version())?;
    tx.commit()?;
    Ok(())
}

/// The schema version a database has after every migration (`user_version`).
pub fn latest_version() -> i64 {
    ALL.len() as i64
}

/// Times are milliseconds since the Unix epoch. Targets are `channel:chat` strings.
const V1: &str = r#"
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,       -- main: 'agent|target|thread'; task: 'task:N'
    kind        TEXT NOT NULL,       -- main | task | cron
    agent       TEXT NOT NULL,
    target      TEXT,
    thread      TEXT,
    summary     TEXT,
    created_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE UNIQUE INDEX sessions_live_key ON sessions(key) WHERE ended_at IS NULL;

CREATE TABLE turns (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    inbox_id    INTEGER,             -- the inbound message whose handling wrote it
    role        TEXT NOT NULL,       -- user | assistant
    content     TEXT NOT NULL,       -- JSON array of content blocks
    tokens      INTEGER NOT NULL DEFAULT 0,
    compacted   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX turns_session ON turns(session_id, id);
CREATE INDEX turns_inbox ON turns(inbox_id) WHERE inbox_id IS NOT NULL;

CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    target      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    payload     TEXT NOT NULL,       -- JSON of the inbound message
    status      TEXT NOT NULL DEFAULT 'pending',   -- pending | done
    received_at INTEGER NOT NULL,
    done_at     INTEGER,
    UNIQUE (target, message_id)
);
CREATE INDEX inbox_pending ON inbox(id) WHERE status = 'pending';

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    target          TEXT NOT NULL,
    thread          TEXT,
    reply_to        TEXT,
    text            TEXT NOT NULL,
    dedupe_key      TEXT UNIQUE,     -- 'reply:INBOX_ID', 'task:ID': one message per cause
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | failed
    parts_sent      INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_pending ON outbox(id) WHERE status = 'pending';

CREATE TABLE tasks (
    id                INTEGER PRIMARY KEY,
    agent             TEXT NOT NULL,
    prompt            TEXT NOT NULL,
    origin            TEXT NOT NULL,  -- target the result goes to
    origin_thread     TEXT,
    requester_session INTEGER REFERENCES sessions(id),
    session_id        INTEGER REFERENCES sessions(id),
    status            TEXT NOT NULL,  -- queued | running | done | failed | cancelled | timed_out | interrupted
    result            TEXT,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER
);
CREATE INDEX tasks_active ON tasks(id) WHERE status IN ('queued', 'running');

-- Per-chat choices made in chat (`/agent NAME`).
CREATE TABLE chat_prefs (
    target      TEXT PRIMARY KEY,
    agent       TEXT
);
"#;

/// Access control: pairing requests from unknown senders, and the senders the owner approved.
const V2: &str = r#"
CREATE TABLE pairing_requests (
    channel     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    name        TEXT,
    code        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (channel, sender)
);
CREATE TABLE allowed_senders (
    channel     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    name        TEXT,
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (channel, sender)
);
"#;

/// Cron jobs and their runs. A run row per (job, slot) is what makes a slot fire at most once.
const V3: &str = r#"
CREATE TABLE cron_jobs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    schedule    TEXT NOT NULL,
    tz          TEXT NOT NULL,
    agent       TEXT NOT NULL,
    message     TEXT NOT NULL,
    target      TEXT,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    next_run    INTEGER            -- the next slot, ms; NULL when disabled
);
CREATE INDEX cron_jobs_due ON cron_jobs(next_run) WHERE enabled = 1;

CREATE TABLE cron_runs (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL,
    slot        INTEGER NOT NULL,  -- the scheduled time, ms
    status      TEXT NOT NULL,     -- running | ok | no_reply | error | failed | skipped
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_retry  INTEGER,
    started_at  INTEGER,
    finished_at INTEGER,
    output      TEXT,
    error       TEXT,
    UNIQUE (job_id, slot)
);
CREATE INDEX cron_runs_retry ON cron_runs(next_retry) WHERE status IN ('error', 'running');
"#;

/// Full-text memory search (FTS5, BM25): memory files line by line, and conversation turns.
/// `memory_files` remembers what was indexed, so a file edited by hand is re-indexed.
const V4: &str = r#"
CREATE VIRTUAL TABLE memory_fts USING fts5(
    text, source UNINDEXED, agent UNINDEXED, ref UNINDEXED,
    tokenize = 'porter unicode61'
);
CREATE TABLE memory_files (
    agent   TEXT NOT NULL,
    path    TEXT NOT NULL,
    mtime   INTEGER NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (agent, path)
);
-- Which index rows belong to which file, so re-indexing one file does not scan the index.
CREATE TABLE memory_rows (
    fts_rowid INTEGER PRIMARY KEY,
    agent     TEXT NOT NULL,
    path      TEXT NOT NULL
);
CREATE INDEX memory_rows_file ON memory_rows(agent, path);
ALTER TABLE sessions ADD COLUMN context_tokens INTEGER NOT NULL DEFAULT 0;
"#;

/// A chat's `/model` choice.
const V5: &str = "ALTER TABLE chat_prefs ADD COLUMN model TEXT;";

/// How far conversation turns are in the search index (they are indexed in batches; turns
/// stored before this version were indexed as they were written).
const V6: &str = "
CREATE TABLE fts_progress (what TEXT PRIMARY KEY, upto INTEGER NOT NULL);
INSERT INTO fts_progress (what, upto) SELECT 'turns', coalesce(max(id), 0) FROM turns;
";

/// Approval requests for tools in `tools.approve`, and "allow for this session" grants. A request
/// outlives a restart: the re-run turn finds it (same session, tool and arguments) and waits on
/// it, or uses an answer given meanwhile (`consumed` marks an approval already used).
const V7: &str = "
CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL,
    agent       TEXT NOT NULL,
    target      TEXT,
    thread      TEXT,
    requester   TEXT,
    tool        TEXT NOT NULL,
    args        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',   -- pending | approved | denied | expired
    scope       TEXT,                              -- once | session, when approved
    decided_by  TEXT,
    message_id  TEXT,
    consumed    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    decided_at  INTEGER
);
CREATE INDEX approvals_session ON approvals(session_id, tool);
CREATE INDEX approvals_pending ON approvals(id) WHERE status = 'pending';
CREATE TABLE approval_grants (
    session_id  INTEGER NOT NULL,
    tool        TEXT NOT NULL,
    granted_by  TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (session_id, tool)
);
";

/// A file posted with the message (`send_file`, `send --file`): JSON of its stored copy, name and
/// media type. Delivered as the last part, after the text when the text is too long for a caption.
const V8: &str = "ALTER TABLE outbox ADD COLUMN file TEXT;";

/// Streamed replies: the messages a live preview posted for an inbox message (one per part of a
/// long reply), so the final reply replaces them in place, also after a crash mid-stream; and, on
/// the stored reply, the preview messages its parts edit (JSON array of platform message ids).
const V9: &str = "
CREATE TABLE previews (
    inbox_id    INTEGER NOT NULL,
    part        INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    PRIMARY KEY (inbox_id, part)
) WITHOUT ROWID;
ALTER TABLE outbox ADD COLUMN edits TEXT;
";

/// Accounting and proactive runs: what every model call used and cost (cost in micro-dollars, so
/// sums are exact), the notices the owner was sent (when each cause was last told, so a restart
/// does not repeat them), and heartbeat runs (one row per slot that ran or was skipped).
const V10: &str = "
CREATE TABLE usage (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    input       INTEGER NOT NULL,
    output      INTEGER NOT NULL,
    cache_read  INTEGER NOT NULL DEFAULT 0,
    cache_write INTEGER NOT NULL DEFAULT 0,
    cost_micros INTEGER NOT NULL DEFAULT 0,
    priced      INTEGER NOT NULL DEFAULT 1,
    agent       TEXT NOT NULL,
    chat        TEXT,
    session_id  INTEGER,
    task_id     INTEGER,
    purpose     TEXT NOT NULL
);
CREATE INDEX usage_at ON usage(at);
CREATE INDEX usage_chat ON usage(chat, at) WHERE chat IS NOT NULL;
CREATE TABLE notices (
    cause       TEXT PRIMARY KEY,
    last_at     INTEGER NOT NULL,
    times       INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE TABLE heartbeat_runs (
    id          INTEGER PRIMARY KEY,
    slot        INTEGER NOT NULL UNIQUE,
    status      TEXT NOT NULL,       -- running | ok | posted | skipped | failed | interrupted
    reply       TEXT,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
);
";

/// Several gateways on one database (PostgreSQL; on SQLite there is only ever one, but the
/// schema is the same): the gateways alive (`seen_at` renewed every second), the leases they hold
/// (a chat, a role such as the scheduler), and which gateway delivers a stored message or runs
/// a task, so that a dead gateway's work is taken over by exactly one other; and which gateway
/// received a message (it answers it when nobody holds the chat yet).
const V11: &str = "
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    pid         INTEGER,
    version     TEXT,
    started_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL
);
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    since       INTEGER NOT NULL
);
CREATE INDEX leases_holder ON leases(holder);
ALTER TABLE outbox ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE inbox ADD COLUMN receiver TEXT;
CREATE INDEX inbox_pending_target ON inbox(target, id) WHERE status = 'pending';
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    /// The first column of every row `sql` returns.
    fn strings(c: &Connection, sql: &str) -> Vec<String> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The schema and rows of a database as SQL that creates them again: every object in the
    /// order SQLite stored it (FTS5's own tables and SQLite's internal ones left out: creating
    /// the virtual table makes them), then each table's rows.
    fn dump(c: &Connection) -> String {
        let shadow = strings(
            c,
            "SELECT name FROM pragma_table_list WHERE type IN ('shadow', 'virtual')",
        );
        let objects: Vec<(String, String, String)> = c
            .prepare(
                "SELECT type, name, sql FROM sqlite_master
                 WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut out = String::from(
            "-- Generated from the migrations in migrations.rs (see SCHEMA there); do not edit.\n",
        );
        let is_shadow = |name: &str| {
            shadow
                .iter()
                .any(|v| name != v && name.starts_with(&format!("{v}_")))
        };
        let mut tables = Vec::new();
        for (kind, name, sql) in objects {
            if is_shadow(&name) {
                continue;
            }
            out.push_str(&format!("{sql};\n"));
            if kind == "table" && !shadow.contains(&name) {
                tables.push(name);
            }
        }
        for t in tables {
            let cols = strings(c, &format!("SELECT name FROM pragma_table_info('{t}')"));
            let values = cols
                .iter()
                .map(|c| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || ', ' || ");
            for row in strings(c, &format!("SELECT {values} FROM \"{t}\" ORDER BY 1")) {
                out.push_str(&format!("INSERT INTO {t} VALUES ({row});\n"));
            }
        }
        out
    }

    #[test]
    fn fresh_schema_is_the_migrations() {
        let mut migrated = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut migrated).unwrap();
        let expected = dump(&migrated);
        if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/sqlite/schema.sql");
            std::fs::write(path, &expected).unwrap();
        }
        assert_eq!(
            SCHEMA, expected,
            "schema.sql is not what the migrations build: run this test with SWITCHBOARD_BLESS=1"
        );
        let mut fresh = Connection::open_in_memory().unwrap();
        create_or_migrate(&mut fresh).unwrap();
        assert_eq!(dump(&fresh), expected);
        let version = |c: &Connection| -> i64 {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&fresh), latest_version());
        assert_eq!(version(&migrated), latest_version());
        // A database from before is migrated, not created anew.
        let mut old = Connection::open_in_memory().unwrap();
        Migrations::new(vec![M::up(V1), M::up(V2)])
            .to_latest(&mut old)
            .unwrap();
        create_or_migrate(&mut old).unwrap();
        assert_eq!(dump(&old), expected);
    }
}
