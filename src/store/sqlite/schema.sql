-- Generated from the migrations in migrations.rs (see SCHEMA there); do not edit.
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
, context_tokens INTEGER NOT NULL DEFAULT 0);
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
    done_at     INTEGER, receiver TEXT,
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
, file TEXT, edits TEXT, owner TEXT);
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
, owner TEXT);
CREATE INDEX tasks_active ON tasks(id) WHERE status IN ('queued', 'running');
CREATE TABLE chat_prefs (
    target      TEXT PRIMARY KEY,
    agent       TEXT
, model TEXT);
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
CREATE TABLE memory_rows (
    fts_rowid INTEGER PRIMARY KEY,
    agent     TEXT NOT NULL,
    path      TEXT NOT NULL
);
CREATE INDEX memory_rows_file ON memory_rows(agent, path);
CREATE TABLE fts_progress (what TEXT PRIMARY KEY, upto INTEGER NOT NULL);
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
CREATE TABLE previews (
    inbox_id    INTEGER NOT NULL,
    part        INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    PRIMARY KEY (inbox_id, part)
) WITHOUT ROWID;
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
CREATE INDEX inbox_pending_target ON inbox(target, id) WHERE status = 'pending';
INSERT INTO fts_progress VALUES ('turns', 0);
