//! Cron jobs and runs. The scheduling logic is in `crate::cron`; this is their storage.

use super::outbox::{NewOutbox, OutboxId, insert_outbox};
use super::sessions::{NewTurn, SessionId, insert_turns};
use super::sql::{Row, p};
use super::{Result, Store, now_ms};

pub type JobId = i64;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CronJob {
    pub id: JobId,
    pub name: String,
    pub schedule: String,
    pub tz: String,
    pub agent: String,
    pub message: String,
    pub target: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub next_run: Option<i64>,
    /// The latest run: its slot, status and error.
    pub last_slot: Option<i64>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
}

/// The scheduler's state at a glance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CronHealth {
    pub jobs: i64,
    /// When the scheduler next has something to do (ms since the epoch).
    pub next_wake: Option<i64>,
    /// The latest finished run: when (ms) and how.
    pub last_run: Option<(i64, String)>,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub name: String,
    pub schedule: String,
    pub tz: String,
    pub agent: String,
    pub message: String,
    pub target: Option<String>,
    pub next_run: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CronRun {
    pub id: i64,
    pub job_id: JobId,
    pub slot: i64,
    pub status: String,
    pub attempts: i64,
}

/// One run of a job as the control room shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CronRunLine {
    pub slot: i64,
    pub status: String,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub output: Option<String>,
    pub error: Option<String>,
}

const JOB_COLS: &str = "j.id, j.name, j.schedule, j.tz, j.agent, j.message, j.target, j.enabled,
    j.created_at, j.next_run, r.slot, r.status, r.error";
const JOB_FROM: &str = "FROM cron_jobs j LEFT JOIN cron_runs r ON r.id =
    (SELECT id FROM cron_runs WHERE job_id = j.id ORDER BY slot DESC LIMIT 1)";

fn job(r: &Row) -> Result<CronJob> {
    Ok(CronJob {
        id: r.get(0)?,
        name: r.get(1)?,
        schedule: r.get(2)?,
        tz: r.get(3)?,
        agent: r.get(4)?,
        message: r.get(5)?,
        target: r.get(6)?,
        enabled: r.get(7)?,
        created_at: r.get(8)?,
        next_run: r.get(9)?,
        last_slot: r.get(10)?,
        last_status: r.get(11)?,
        last_error: r.get(12)?,
    })
}

fn run(r: &Row) -> Result<CronRun> {
    Ok(CronRun {
        id: r.get(0)?,
        job_id: r.get(1)?,
        slot: r.get(2)?,
        status: r.get(3)?,
        attempts: r.get(4)?,
    })
}

impl Store {
    pub async fn cron_add(&self, j: &NewJob) -> Result<JobId> {
        let j = j.clone();
        self.write(move |c| {
            c.value(
"INSERT INTO cron_jobs (name, schedule, tz, agent, message, target, created_at, next_run)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
 RETURNING id",
                p![j.name, j.schedule, j.tz, j.agent, j.message, j.target, now_ms(), j.next_run],
            )
        })
        .await
        .inspect(|_| self.cron_changed())
    }

    pub async fn cron_jobs(&self, target: Option<&str>) -> Result<Vec<CronJob>> {
        let target = target.map(str::to_owned);
        self.scan(move |c| {
            c.all(
                &format!(
                    "SELECT {JOB_COLS} {JOB_FROM} WHERE (CAST(?1 AS TEXT) IS NULL OR j.target = ?1) ORDER BY j.id"
                ),
                p![target],
                job,
            )
        })
        .await
    }

    pub async fn cron_job(&self, id: JobId) -> Result<Option<CronJob>> {
        self.read(move |c| {
            c.opt(
                &format!("SELECT {JOB_COLS} {JOB_FROM} WHERE j.id = ?1"),
                p![id],
                job,
            )
        })
        .await
    }

    /// Rewrites a job (the control room's edit); its run history stays. False if there is none.
    pub async fn cron_update(&self, id: JobId, j: &NewJob, enabled: bool) -> Result<bool> {
        let j = j.clone();
        self.write(move |c| {
            Ok(c.run(
                "UPDATE cron_jobs SET name = ?2, schedule = ?3, tz = ?4, agent = ?5, message = ?6,
                 target = ?7, next_run = ?8, enabled = ?9 WHERE id = ?1",
                p![
                    id, j.name, j.schedule, j.tz, j.agent, j.message, j.target, j.next_run, enabled
                ],
            )? > 0)
        })
        .await
        .inspect(|_| self.cron_changed())
    }

    /// A job's latest runs, newest first.
    pub async fn cron_history(&self, job: JobId, limit: usize) -> Result<Vec<CronRunLine>> {
        self.scan(move |c| {
            c.all(
                "SELECT slot, status, attempts, started_at, finished_at, output, error
                 FROM cron_runs WHERE job_id = ?1 ORDER BY slot DESC LIMIT ?2",
                p![job, limit as i64],
                |r| {
                    Ok(CronRunLine {
                        slot: r.get(0)?,
                        status: r.get(1)?,
                        attempts: r.get(2)?,
                        started_at: r.get(3)?,
                        finished_at: r.get(4)?,
                        output: r.get(5)?,
                        error: r.get(6)?,
                    })
                },
            )
        })
        .await
    }

    /// Removes a job and its run history; false if there was none.
    pub async fn cron_remove(&self, id: JobId) -> Result<bool> {
        self.write(move |tx| {
            tx.run("DELETE FROM cron_runs WHERE job_id = ?1", p![id])?;
            Ok(tx.run("DELETE FROM cron_jobs WHERE id = ?1", p![id])? > 0)
        })
        .await
        .inspect(|_| self.cron_changed())
    }

    pub async fn cron_clear(&self) -> Result<usize> {
        self.write(move |tx| {
            tx.run("DELETE FROM cron_runs", p![])?;
            tx.run("DELETE FROM cron_jobs", p![])
        })
        .await
        .inspect(|_| self.cron_changed())
    }

    /// Enables (with its next slot) or disables a job; false if there is no such job.
    pub async fn cron_set_enabled(
        &self,
        id: JobId,
        enabled: bool,
        next_run: Option<i64>,
    ) -> Result<bool> {
        self.write(move |c| {
            Ok(c.run(
                "UPDATE cron_jobs SET enabled = ?2, next_run = ?3 WHERE id = ?1",
                p![id, enabled, next_run],
            )? > 0)
        })
        .await
        .inspect(|_| self.cron_changed())
    }

    /// The earliest slot of any enabled job, and the earliest pending retry: when to wake up.
    pub async fn cron_next_wake(&self) -> Result<Option<i64>> {
        self.read(move |c| {
            let job: Option<i64> = c.one(
                "SELECT min(next_run) FROM cron_jobs WHERE enabled = 1",
                p![],
                |r| r.get(0),
            )?;
            let retry: Option<i64> = c.one(
                "SELECT min(next_retry) FROM cron_runs WHERE status = 'error'",
                p![],
                |r| r.get(0),
            )?;
            Ok(match (job, retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
        })
        .await
    }

    /// Enabled jobs whose next slot is due at `now`.
    pub async fn cron_due(&self, now: i64) -> Result<Vec<CronJob>> {
        self.read(move |c| {
            c.all(&format!(
                "SELECT {JOB_COLS} {JOB_FROM} WHERE j.enabled = 1 AND j.next_run <= ?1 ORDER BY j.next_run"
            ), p![now], job)
        }).await
    }

    /// Moves a job to its next slot and records what happens to `slot`: `running` (returns the
    /// run id to execute) or `skipped`. A slot already recorded is never recorded again, so it
    /// fires at most once however often this is called.
    pub async fn cron_claim(
        &self,
        job: JobId,
        slot: i64,
        next_run: Option<i64>,
        skip: bool,
    ) -> Result<Option<i64>> {
        let now = now_ms();
        self.write(move |tx| {
            tx.run(
                "UPDATE cron_jobs SET next_run = ?2 WHERE id = ?1",
                p![job, next_run],
            )?;
            let status = if skip { "skipped" } else { "running" };
            let id: Option<i64> = tx.opt(
                "INSERT INTO cron_runs (job_id, slot, status, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN CAST(?4 AS BIGINT) END) ON CONFLICT (job_id, slot) DO NOTHING
                 RETURNING id",
                p![job, slot, status, now, skip],
                |r| r.get(0),
            )?;
            Ok(id.filter(|_| !skip))
        }).await
    }

    /// Records a manual run (`cron run ID`) as its own slot.
    pub async fn cron_claim_manual(&self, job: JobId, slot: i64) -> Result<Option<i64>> {
        self.write(move |c| {
            c.opt(
"INSERT INTO cron_runs (job_id, slot, status, started_at) VALUES (?1, ?2, 'running', ?3)
                 ON CONFLICT (job_id, slot) DO NOTHING
 RETURNING id",
                p![job, slot, now_ms()],
            |r| r.get(0),
)
        })
        .await
    }

    /// Runs to (re)start: interrupted by a stop (`running`) or waiting for a retry that is due.
    pub async fn cron_runs_to_resume(
        &self,
        now: i64,
        include_running: bool,
    ) -> Result<Vec<CronRun>> {
        self.read(move |c| {
            c.all(
                "SELECT id, job_id, slot, status, attempts FROM cron_runs
                 WHERE (status = 'error' AND next_retry <= ?1) OR (?2 AND status = 'running')
                 ORDER BY slot",
                p![now, include_running],
                run,
            )
        })
        .await
    }

    /// Marks a retry as started again; false if another start got there first.
    pub async fn cron_restart(&self, run: i64) -> Result<bool> {
        self.write(move |c| {
            Ok(c.run(
                "UPDATE cron_runs SET status = 'running', next_retry = NULL WHERE id = ?1 AND status = 'error'",
                p![run],
            )? == 1)
        }).await
    }

    /// Ends a run: its status and output, the session turns, and the post for the target, in one
    /// transaction (the post's dedupe key makes a re-run after a crash post nothing twice).
    #[allow(clippy::too_many_arguments)]
    pub async fn cron_finish(
        &self,
        run: i64,
        status: &str,
        output: Option<&str>,
        error: Option<&str>,
        next_retry: Option<i64>,
        turns: Option<(SessionId, &[NewTurn])>,
        post: Option<&NewOutbox>,
    ) -> Result<Option<OutboxId>> {
        let status = status.to_owned();
        let output = output.map(str::to_owned);
        let error = error.map(str::to_owned);
        let turns = turns.map(|(s, t)| (s, t.to_vec()));
        let post = post.cloned();
        let store = self.clone();
        let now = now_ms();
        self.write(move |tx| {
            tx.run(
                "UPDATE cron_runs SET status = ?2, output = ?3, error = ?4, next_retry = ?5,
                 attempts = attempts + 1, finished_at = ?6 WHERE id = ?1",
                p![run, status, output, error, next_retry, now],
            )?;
            if let Some((s, t)) = &turns {
                insert_turns(tx, *s, None, t)?;
            }
            match &post {
                Some(p) => insert_outbox(tx, p),
                None => Ok(None),
            }
        })
        .await
        .inspect(|_| {
            if next_retry.is_some() {
                store.cron_changed();
            }
        })
    }

    pub async fn cron_run_get(&self, run_id: i64) -> Result<Option<CronRun>> {
        self.read(move |c| {
            c.opt(
                "SELECT id, job_id, slot, status, attempts FROM cron_runs WHERE id = ?1",
                p![run_id],
                run,
            )
        })
        .await
    }

    /// Jobs, the next wake-up and the latest finished run, for `gateway status` and `doctor`.
    pub async fn cron_health(&self) -> Result<CronHealth> {
        let next = self.cron_next_wake().await?;
        self.scan(move |c| {
            let jobs: i64 = c.value("SELECT count(*) FROM cron_jobs", p![])?;
            let last = c.opt(
                "SELECT finished_at, status FROM cron_runs WHERE finished_at IS NOT NULL
                     ORDER BY finished_at DESC LIMIT 1",
                p![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(CronHealth {
                jobs,
                next_wake: next,
                last_run: last,
            })
        })
        .await
    }
}
