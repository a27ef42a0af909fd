//! Heartbeat runs: one row per slot that ran or was skipped (the scheduling is in
//! `crate::heartbeat`). The slot is unique, so a slot never runs twice, also across restarts.

use super::{Cached, Result, Store, now_ms};
use rusqlite::{OptionalExtension, params};

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

fn run(r: &rusqlite::Row) -> rusqlite::Result<HeartbeatRun> {
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
    pub fn heartbeat_claim(&self, slot: i64, skipped: Option<&str>) -> Result<Option<i64>> {
        self.with(|c| {
            let (status, finished) = match skipped {
                Some(_) => ("skipped", Some(now_ms())),
                None => ("running", None),
            };
            let n = c.run(
                "INSERT INTO heartbeat_runs (slot, status, error, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (slot) DO NOTHING",
                params![slot, status, skipped, now_ms(), finished],
            )?;
            Ok((n == 1).then(|| c.last_insert_rowid()))
        })
    }

    pub fn heartbeat_finish(
        &self,
        id: i64,
        status: &str,
        reply: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.run(
                "UPDATE heartbeat_runs SET status = ?2, reply = ?3, error = ?4, finished_at = ?5
                 WHERE id = ?1",
                params![id, status, reply, error, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Runs a stop interrupted are marked so (a heartbeat is not worth re-running late).
    pub fn heartbeat_interrupted(&self) -> Result<usize> {
        self.with(|c| {
            Ok(c.run(
                "UPDATE heartbeat_runs SET status = 'interrupted', finished_at = ?1
                 WHERE status = 'running'",
                [now_ms()],
            )?)
        })
    }

    /// The latest slot recorded (ran or skipped).
    pub fn heartbeat_last_slot(&self) -> Result<Option<i64>> {
        self.with(|c| {
            Ok(
                c.one("SELECT max(slot) FROM heartbeat_runs", [], |r| r.get(0))
                    .optional()?
                    .flatten(),
            )
        })
    }

    /// The latest `limit` runs, newest first.
    pub fn heartbeat_runs(&self, limit: i64) -> Result<Vec<HeartbeatRun>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM heartbeat_runs ORDER BY slot DESC LIMIT ?1"
            ))?;
            let rows = st.query_map([limit], run)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_runs_once_and_the_history_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let id = s.heartbeat_claim(1_000, None).unwrap().unwrap();
        assert_eq!(s.heartbeat_claim(1_000, None).unwrap(), None);
        assert!(
            s.heartbeat_claim(2_000, Some("outside active hours"))
                .unwrap()
                .is_some()
        );
        assert_eq!(s.heartbeat_last_slot().unwrap(), Some(2_000));
        s.heartbeat_finish(id, "ok", Some("HEARTBEAT_OK"), None)
            .unwrap();
        let runs = s.heartbeat_runs(10).unwrap();
        assert_eq!(runs[0].status, "skipped");
        assert_eq!(runs[1].status, "ok");
        let id3 = s.heartbeat_claim(3_000, None).unwrap().unwrap();
        assert_eq!(s.heartbeat_interrupted().unwrap(), 1);
        assert_eq!(s.heartbeat_runs(1).unwrap()[0].id, id3);
        assert_eq!(s.heartbeat_runs(1).unwrap()[0].status, "interrupted");
    }
}
