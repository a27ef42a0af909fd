//! Heartbeat runs: one row per slot that ran or was skipped (the scheduling is in
//! `crate::heartbeat`). The slot is unique, so a slot never runs twice, also across restarts.

use super::sql::{Row, p};
use super::{Result, Store, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeartbeatRun {
    pub id: i64,
    /// The slot it ran for (ms since the epoch).
    pub slot: i64,
    /// `running`, `ok` (nothing to say), `posted`, `skipped`, `failed` or `interrupted`.
    pub status: String,
    pub reply: Option<String>,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

const COLS: &str = "id, slot, status, reply, error, started_at, finished_at";

fn run(r: &Row) -> Result<HeartbeatRun> {
    Ok(HeartbeatRun {
        id: r.get(0)?,
        slot: r.get(1)?,
        status: r.get(2)?,
        reply: r.get(3)?,
        error: r.get(4)?,
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
    })
}

impl Store {
    /// Claims `slot`: its run id, or `None` when the slot already ran (or was skipped).
    /// `skipped` records the slot as skipped for that reason instead of starting it.
    pub async fn heartbeat_claim(&self, slot: i64, skipped: Option<&str>) -> Result<Option<i64>> {
        let skipped = skipped.map(str::to_owned);
        self.write(move |c| {
            let (status, finished) = match skipped {
                Some(_) => ("skipped", Some(now_ms())),
                None => ("running", None),
            };
            c.opt(
                "INSERT INTO heartbeat_runs (slot, status, error, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (slot) DO NOTHING
 RETURNING id",
                p![slot, status, skipped, now_ms(), finished],
                |r| r.get(0),
            )
        })
        .await
    }

    pub async fn heartbeat_finish(
        &self,
        id: i64,
        status: &str,
        reply: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let status = status.to_owned();
        let reply = reply.map(str::to_owned);
        let error = error.map(str::to_owned);
        self.write(move |c| {
            c.run(
                "UPDATE heartbeat_runs SET status = ?2, reply = ?3, error = ?4, finished_at = ?5
                 WHERE id = ?1",
                p![id, status, reply, error, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Runs a stop interrupted are marked so (a heartbeat is not worth re-running late).
    pub async fn heartbeat_interrupted(&self) -> Result<usize> {
        self.write(move |c| {
            c.run(
                "UPDATE heartbeat_runs SET status = 'interrupted', finished_at = ?1
                 WHERE status = 'running'",
                p![now_ms()],
            )
        })
        .await
    }

    /// The latest slot recorded (ran or skipped).
    pub async fn heartbeat_last_slot(&self) -> Result<Option<i64>> {
        self.read(move |c| {
            Ok(
                c.opt("SELECT max(slot) FROM heartbeat_runs", p![], |r| r.get(0))?
                    .flatten(),
            )
        })
        .await
    }

    /// The latest `limit` runs, newest first.
    pub async fn heartbeat_runs(&self, limit: i64) -> Result<Vec<HeartbeatRun>> {
        self.scan(move |c| {
            let rows = c.all(
                &format!("SELECT {COLS} FROM heartbeat_runs ORDER BY slot DESC LIMIT ?1"),
                p![limit],
                run,
            )?;
            Ok(rows)
        })
        .await
    }
}
