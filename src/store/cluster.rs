//! Several gateways on one database: which are alive, the leases they hold, and the work a dead
//! one left (the policy is in `crate::cluster`; this is its storage).
//!
//! A gateway is alive while its `instances.seen_at` is fresh (it renews it every second). A
//! lease (a chat, a role such as `scheduler`) belongs to its holder while the holder is alive;
//! then anyone may take it. Stored messages to deliver and tasks to run are marked with the
//! gateway that made them (`owner`); a dead owner's are adopted by one live gateway, row by
//! row (`FOR UPDATE SKIP LOCKED`), so each is delivered or run once. Times come from the
//! database's clock, so gateways on different machines agree on who is alive.

use super::inbox::InboxId;
use super::sql::{Db, Param, p};
use super::tasks::TaskRow;
use super::{OutboxId, Result, Store};

/// A gateway as `gateway status` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InstanceRow {
    pub id: String,
    pub pid: Option<i64>,
    pub version: Option<String>,
    pub started_at: i64,
    /// Milliseconds since it last said it was alive.
    pub silent_ms: i64,
    pub alive: bool,
    /// The roles it holds (`scheduler`, `telegram-poll`).
    pub roles: Vec<String>,
    /// How many chats it holds.
    pub chats: i64,
}

/// What [`Store::outbox_adopt`] took over.
#[derive(Debug, Default, PartialEq)]
pub struct Adopted {
    /// Stored replies to deliver (id, target), oldest first.
    pub replies: Vec<(OutboxId, String)>,
    /// The chats (targets) taken with them.
    pub chats: Vec<String>,
}

impl Store {
    /// Records this gateway as alive (again, after a restart under the same id), and forgets
    /// gateways silent for a day (their leases went to others long ago).
    pub async fn instance_join(&self, pid: u32, version: &str) -> Result<()> {
        let version = version.to_owned();
        self.write(move |c| {
            let gone = format!(
                "SELECT id FROM instances WHERE seen_at < {} - 86400000",
                c.now_sql()
            );
            c.run(
                &format!("DELETE FROM leases WHERE holder IN ({gone})"),
                p![],
            )?;
            c.run(&format!("DELETE FROM instances WHERE id IN ({gone})"), p![])?;
            let sql = format!(
                "INSERT INTO instances (id, pid, version, started_at, seen_at)
                 VALUES (?1, ?2, ?3, {now}, {now})
                 ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, version = excluded.version,
                 started_at = excluded.started_at, seen_at = excluded.seen_at",
                now = c.now_sql()
            );
            c.run(&sql, p![c.me(), pid, version])?;
            Ok(())
        })
        .await
    }

    /// Says this gateway is still alive; false if its row was gone (it was taken for dead and
    /// removed), in which case it is recorded again and its leases must be taken anew.
    pub async fn instance_beat(&self) -> Result<bool> {
        self.write(move |c| {
            let sql = format!(
                "UPDATE instances SET seen_at = {} WHERE id = ?1",
                c.now_sql()
            );
            if c.run(&sql, p![c.me()])? == 1 {
                return Ok(true);
            }
            let sql = format!(
                "INSERT INTO instances (id, started_at, seen_at) VALUES (?1, {now}, {now})
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                now = c.now_sql()
            );
            c.run(&sql, p![c.me()])?;
            Ok(false)
        })
        .await
    }

    /// Leaves: this gateway's row and leases go, so the others take its chats and roles at once
    /// instead of after the time it takes to be declared dead.
    pub async fn instance_leave(&self) -> Result<()> {
        self.write(move |c| {
            c.run("DELETE FROM leases WHERE holder = ?1", p![c.me()])?;
            c.run("DELETE FROM instances WHERE id = ?1", p![c.me()])?;
            Ok(())
        })
        .await
    }

    /// Every gateway recorded, alive ones first, with what each holds. `ttl_ms`: how long a
    /// gateway may stay silent and still count as alive.
    pub async fn instances(&self, ttl_ms: i64) -> Result<Vec<InstanceRow>> {
        self.scan(move |c| {
            let sql = format!(
                "SELECT id, pid, version, started_at, {now} - seen_at FROM instances
                 ORDER BY seen_at DESC, id",
                now = c.now_sql()
            );
            let mut rows = c.all(&sql, p![], |r| {
                let silent: i64 = r.get(4)?;
                Ok(InstanceRow {
                    id: r.get(0)?,
                    pid: r.get(1)?,
                    version: r.get(2)?,
                    started_at: r.get(3)?,
                    silent_ms: silent.max(0),
                    alive: silent < ttl_ms,
                    roles: Vec::new(),
                    chats: 0,
                })
            })?;
            let leases = c.all("SELECT holder, name FROM leases ORDER BY name", p![], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })?;
            for (holder, name) in leases {
                if let Some(i) = rows.iter_mut().find(|i| i.id == holder) {
                    match name.strip_prefix("role:") {
                        Some(role) => i.roles.push(role.to_string()),
                        None => i.chats += 1,
                    }
                }
            }
            Ok(rows)
        })
        .await
    }

    /// Takes (or keeps) lease `name` for this gateway: true if it is ours now. A lease held by
    /// a gateway silent for `ttl_ms` or more is taken over.
    pub async fn lease_take(&self, name: &str, ttl_ms: i64) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| take_lease(c, &name, ttl_ms)).await
    }

    /// Takes (or keeps) the chat `target` for this gateway and, in the same transaction, makes
    /// it the deliverer of the chat's stored replies nobody alive is delivering. `None` if
    /// another live gateway holds the chat; else those replies (id, target), oldest first, which
    /// answer older messages than any the taker is about to answer and so must be queued for
    /// delivery before it answers the chat's next message.
    pub async fn chat_take(
        &self,
        target: &str,
        ttl_ms: i64,
    ) -> Result<Option<Vec<(OutboxId, String)>>> {
        let target = target.to_owned();
        self.write(move |c| {
            if !take_lease(c, &format!("chat:{target}"), ttl_ms)? {
                return Ok(None);
            }
            let rows = adopt_replies(c, "o.target = ?4", p![c.me(), ttl_ms, false, target])?;
            Ok(Some(rows))
        })
        .await
    }

    /// Gives up lease `name` if this gateway holds it.
    pub async fn lease_drop(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.write(move |c| {
            c.run(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                p![name, c.me()],
            )?;
            Ok(())
        })
        .await
    }

    /// Unanswered messages this gateway may handle, oldest first, as (id, chat, payload): those
    /// of chats it holds, of chats whose holder is dead (silent `ttl_ms`), and of chats nobody
    /// holds if this gateway received the message or it was received at `free_before` (ms) or
    /// earlier. A chat held by another live gateway is that gateway's to answer.
    pub async fn inbox_claimable(
        &self,
        ttl_ms: i64,
        free_before: i64,
        limit: i64,
    ) -> Result<Vec<(InboxId, String, String)>> {
        self.read(move |c| {
            let sql = format!(
                "SELECT i.id, i.target, i.payload FROM inbox i WHERE i.status = 'pending'
                 AND NOT EXISTS (SELECT 1 FROM leases l JOIN instances n ON n.id = l.holder
                     WHERE l.name = 'chat:' || i.target AND l.holder <> ?1
                     AND n.seen_at > {now} - ?2)
                 AND (i.receiver = ?1 OR i.received_at <= ?4
                     OR EXISTS (SELECT 1 FROM leases l WHERE l.name = 'chat:' || i.target))
                 ORDER BY i.id LIMIT ?3",
                now = c.now_sql()
            );
            c.all(&sql, p![c.me(), ttl_ms, limit, free_before], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
        })
        .await
    }

    /// The unanswered messages of one chat, oldest first, as (id, payload).
    pub async fn inbox_pending_in(&self, target: &str) -> Result<Vec<(InboxId, String)>> {
        let target = target.to_owned();
        self.read(move |c| {
            c.all(
                "SELECT id, payload FROM inbox WHERE status = 'pending' AND target = ?1 ORDER BY id",
                p![target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    /// Makes this gateway the deliverer of stored messages nobody alive is delivering (those of
    /// dead gateways, silent `ttl_ms`; unowned ones; with `mine` its own, after a restart under
    /// the same id), together with their chats: a chat's replies go out through the gateway
    /// holding it, the one answering its next messages, or a newer answer could overtake an
    /// older one. So it takes each such chat that is free or whose holder is dead, and adopts
    /// the replies of the chats it then holds, in one transaction; another live gateway's chats'
    /// replies are left to that gateway. Returns the replies (id, target), oldest first, and the
    /// chats taken.
    pub async fn outbox_adopt(&self, ttl_ms: i64, mine: bool) -> Result<Adopted> {
        self.write(move |c| {
            let orphaned = orphaned(c);
            // In name order, so two gateways taking overlapping chats lock them in one order.
            let sql = format!(
                "INSERT INTO leases (name, holder, since)
                 SELECT name, ?1, {now} FROM (SELECT DISTINCT 'chat:' || target AS name
                     FROM outbox WHERE status = 'pending' AND {orphaned}) o
                 WHERE true ORDER BY name
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, since = excluded.since
                 WHERE leases.holder <> excluded.holder AND leases.holder NOT IN
                     (SELECT id FROM instances WHERE seen_at > {now} - ?2)
                 RETURNING name",
                now = c.now_sql()
            );
            let chats: Vec<String> = c.all(&sql, p![c.me(), ttl_ms, mine], |r| {
                let name: String = r.get(0)?;
                Ok(name.strip_prefix("chat:").unwrap_or(&name).to_string())
            })?;
            // A restarted gateway's own replies are its own whoever holds their chat now.
            let replies = adopt_replies(
                c,
                "((owner = ?1 AND ?3) OR EXISTS (SELECT 1 FROM leases l
                     WHERE l.name = 'chat:' || o.target AND l.holder = ?1))",
                p![c.me(), ttl_ms, mine],
            )?;
            Ok(Adopted { replies, chats })
        })
        .await
    }

    /// Makes this gateway the runner of active tasks whose gateway is dead (silent `ttl_ms`),
    /// unowned ones, and with `mine` its own. Returns them, oldest first.
    pub async fn tasks_adopt(&self, ttl_ms: i64, mine: bool) -> Result<Vec<TaskRow>> {
        self.write(move |c| {
            let sql = format!(
                "UPDATE tasks SET owner = ?1 WHERE id IN (
                     SELECT id FROM tasks WHERE status IN ('queued', 'running') AND (owner IS NULL
                         OR (owner = ?1 AND ?3)
                         OR (owner <> ?1 AND owner NOT IN
                             (SELECT id FROM instances WHERE seen_at > {now} - ?2)))
                     ORDER BY id {lock})
                 RETURNING {cols}",
                now = c.now_sql(),
                lock = c.skip_locked(),
                cols = super::tasks::COLS
            );
            let mut rows = c.all(&sql, p![c.me(), ttl_ms, mine], super::tasks::row)?;
            rows.sort_unstable_by_key(|t| t.id);
            Ok(rows)
        })
        .await
    }
}

/// Takes (or keeps) lease `name` (see [`Store::lease_take`]).
fn take_lease(c: &Db, name: &str, ttl_ms: i64) -> Result<bool> {
    let sql = format!(
        "INSERT INTO leases (name, holder, since) VALUES (?1, ?2, {now})
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, since = excluded.since
         WHERE leases.holder = excluded.holder OR leases.holder NOT IN
             (SELECT id FROM instances WHERE seen_at > {now} - ?3)
         RETURNING holder",
        now = c.now_sql()
    );
    let taken: Option<String> = c.opt(&sql, p![name, c.me(), ttl_ms], |r| r.get(0))?;
    Ok(taken.as_deref() == Some(c.me()))
}

/// Makes this gateway the deliverer of the pending replies (`o`) nobody alive is delivering
/// that also meet `and` (with the parameters of [`orphaned`], and any after them); returns them
/// (id, target), oldest first.
fn adopt_replies(c: &Db, and: &str, params: &[&dyn Param]) -> Result<Vec<(OutboxId, String)>> {
    let sql = format!(
        "UPDATE outbox SET owner = ?1 WHERE id IN (
             SELECT id FROM outbox o WHERE status = 'pending' AND {orphaned} AND {and}
             ORDER BY id {lock})
         RETURNING id, target",
        orphaned = orphaned(c),
        lock = c.skip_locked()
    );
    let mut rows: Vec<(OutboxId, String)> = c.all(&sql, params, |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.sort_unstable_by_key(|r| r.0);
    Ok(rows)
}

/// An outbox row's condition for nobody alive delivering it, with `?1` this gateway, `?2` the
/// time to live (ms) and `?3` whether this gateway's own rows count (a restart).
fn orphaned(c: &Db) -> String {
    format!(
        "(owner IS NULL OR (owner = ?1 AND ?3) OR (owner <> ?1 AND owner NOT IN
             (SELECT id FROM instances WHERE seen_at > {now} - ?2)))",
        now = c.now_sql()
    )
}
