//! Cron: scheduled, isolated agent runs whose reply is posted to a target.
//!
//! Jobs live in the database, so they survive restarts and the CLI can add them while the gateway
//! is down. The scheduler wakes at least every second, reads the due jobs from the database (so
//! changes made by the CLI apply at once, with no restart), and re-derives its next wake-up from
//! the jobs every time, so it cannot silently stop: a clock jump or a suspended machine only makes
//! due jobs fire on the next wake.
//!
//! A slot fires at most once: the run row for (job, slot) is claimed in the same transaction that
//! moves the job to its next slot, and the post carries a dedupe key, so even a run re-started
//! after a crash posts once. After downtime, only the latest missed slot fires, and only if it is
//! less than [`CATCH_UP`] late; otherwise it is recorded as skipped.

pub mod clock;
pub mod schedule;

use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::store::{CronJob, NewJob, NewOutbox, SessionKind, Store};
use crate::tools::TurnContext;
use chrono::{DateTime, TimeZone, Utc};
use clock::Clock;
pub use schedule::Schedule;
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::Target;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How late a missed slot may still fire at start-up.
pub const CATCH_UP: Duration = Duration::from_secs(6 * 3600);
/// Attempts of one slot before the owner is told it failed.
const MAX_ATTEMPTS: i64 = 3;
/// A reply that is exactly this posts nothing.
pub const NO_REPLY: &str = "NO_REPLY";

/// What `cron add` and the agent's tool ask for.
#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    pub schedule: String,
    pub message: String,
    pub target: Option<String>,
    pub agent: Option<String>,
    pub tz: Option<String>,
    pub name: Option<String>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Whether `target` names a chat on a channel this config runs.
pub fn check_target(config: &Config, target: &str) -> Result<String, String> {
    let t: Target = target
        .parse()
        .map_err(|e: switchboard_channel::TargetError| e.to_string())?;
    let enabled = match t.channel.as_str() {
        "local" | "web" => true,
        "telegram" => config
            .channels
            .telegram
            .as_ref()
            .is_some_and(|c| c.token.is_some()),
        "discord" => config
            .channels
            .discord
            .as_ref()
            .is_some_and(|c| c.token.is_some()),
        _ => false,
    };
    if !enabled {
        return Err(format!(
            "the {} channel is not enabled in the config (set channels.{}.token)",
            t.channel, t.channel
        ));
    }
    Ok(t.to_string())
}

/// Validates `spec` and stores the job. Every problem is named: schedule, time zone, agent, target.
pub async fn add_job(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    spec: JobSpec,
) -> Result<CronJob, String> {
    let job = checked(config, now, spec)?;
    let id = store.cron_add(&job).await.map_err(|e| e.to_string())?;
    store
        .cron_job(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the job vanished".to_string())
}

/// Replaces job `id` with `spec`, checked as `add_job` checks it (the control room's edit).
pub async fn update_job(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    id: i64,
    spec: JobSpec,
    enabled: bool,
) -> Result<CronJob, String> {
    let mut job = checked(config, now, spec)?;
    if !enabled {
        job.next_run = None;
    }
    if !store
        .cron_update(id, &job, enabled)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("no cron job #{id}"));
    }
    store
        .cron_job(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the job vanished".to_string())
}

/// The job `spec` describes, with its next slot after `now`; every problem named.
fn checked(config: &Config, now: DateTime<Utc>, spec: JobSpec) -> Result<NewJob, String> {
    let agent = spec
        .agent
        .unwrap_or_else(|| config.coordinator().to_string());
    if !config.agents.contains_key(&agent) {
        return Err(format!(
            "no agent named `{agent}` (agents: {})",
            config.agents.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let tz = spec.tz.unwrap_or_else(|| config.tz().name().to_string());
    let schedule = Schedule::parse(&spec.schedule, &tz)?;
    let target = spec.target.map(|t| check_target(config, &t)).transpose()?;
    if spec.message.trim().is_empty() {
        return Err("the job needs a message (the prompt the agent runs)".into());
    }
    let name = spec
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| spec.message.chars().take(40).collect());
    Ok(NewJob {
        name,
        schedule: spec.schedule.trim().to_string(),
        tz,
        agent,
        message: spec.message,
        target,
        next_run: schedule.next_after(now).map(ms),
    })
}

/// Enables (from the next slot after `now`) or disables a job.
pub async fn set_enabled(
    store: &Store,
    now: DateTime<Utc>,
    id: i64,
    enabled: bool,
) -> Result<(), String> {
    let job = store
        .cron_job(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no cron job #{id}"))?;
    let next = if enabled {
        Schedule::parse(&job.schedule, &job.tz)?
            .next_after(now)
            .map(ms)
    } else {
        None
    };
    store
        .cron_set_enabled(id, enabled, next)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// One line per job, for `/cron`, the tool and the CLI.
pub fn describe(jobs: &[CronJob], tz_fallback: chrono_tz::Tz) -> String {
    if jobs.is_empty() {
        return "No cron jobs.".into();
    }
    jobs.iter()
        .map(|j| {
            let tz: chrono_tz::Tz = j.tz.parse().unwrap_or(tz_fallback);
            let next = match (j.enabled, j.next_run) {
                (false, _) => "disabled".to_string(),
                (true, Some(n)) => from_ms(n)
                    .with_timezone(&tz)
                    .format("next %a %d %b %H:%M %Z")
                    .to_string(),
                (true, None) => "no next run".to_string(),
            };
            let last = match (&j.last_status, j.last_slot) {
                (Some(s), Some(slot)) => format!(
                    "; last {} {}",
                    from_ms(slot).with_timezone(&tz).format("%d %b %H:%M"),
                    s
                ),
                _ => String::new(),
            };
            format!(
                "#{} {} [{} {}] {} → {} ({next}{last})",
                j.id,
                j.name,
                j.schedule,
                j.tz,
                j.agent,
                j.target.as_deref().unwrap_or("(no target)")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scheduler task.
pub struct Scheduler {
    coordinator: Coordinator,
    clock: Arc<dyn Clock>,
}

impl Scheduler {
    pub fn new(coordinator: Coordinator, clock: Arc<dyn Clock>) -> Scheduler {
        Scheduler { coordinator, clock }
    }

    /// Runs until `shutdown`: resumes runs a stop interrupted, then fires each slot when it is due.
    pub async fn run(self, shutdown: CancellationToken) {
        let store = self.coordinator.store().clone();
        let now = self.clock.now();
        match store.cron_runs_to_resume(ms(now), true).await {
            Ok(runs) => {
                for r in runs.into_iter().filter(|r| r.status == "running") {
                    if now - from_ms(r.slot)
                        <= chrono::Duration::from_std(CATCH_UP).unwrap_or_default()
                    {
                        tracing::info!(
                            job = r.job_id,
                            "re-running a cron run interrupted by a stop"
                        );
                        self.spawn_run(r.job_id, r.id, r.slot);
                    } else if let Err(e) = store
                        .cron_finish(
                            r.id,
                            "skipped",
                            None,
                            Some("interrupted and too late to re-run"),
                            None,
                            None,
                            None,
                        )
                        .await
                    {
                        tracing::error!(error = %e, "cannot record cron run");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read interrupted cron runs"),
        }
        loop {
            self.tick().await;
            // Sleep until the next slot, or until the jobs change (the store signals changes made
            // here, and the CLI pokes the gateway after editing the database itself). The clock
            // says how long we may sleep without looking: a wall-clock step must not make a job
            // hours late.
            let now = ms(self.clock.now());
            let longest = self.clock.recheck_every().as_millis() as i64;
            let until_next = store
                .cron_next_wake()
                .await
                .ok()
                .flatten()
                // Still due right after a tick means it cannot fire now (its run is in progress or
                // the database refused it): look again in a second rather than spin.
                .map_or(longest, |next| {
                    if next > now {
                        (next - now).min(longest)
                    } else {
                        1000
                    }
                });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = store.cron_changes() => {}
                _ = tokio::time::sleep(Duration::from_millis(until_next as u64)) => {}
            }
        }
    }

    /// Fires what is due now. Public for tests that drive the scheduler with their own clock.
    pub async fn tick(&self) {
        let store = self.coordinator.store();
        let now = self.clock.now();
        let due = match store.cron_due(ms(now)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read due cron jobs");
                return;
            }
        };
        for job in due {
            let Some(due_at) = job.next_run else { continue };
            let schedule = match Schedule::parse(&job.schedule, &job.tz) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(job = job.id, error = %e, "invalid stored schedule; disabling the job");
                    let _ = store.cron_set_enabled(job.id, false, None).await;
                    continue;
                }
            };
            // The latest slot that is due (missed ones before it are not fired again).
            let (latest, next) = schedule.latest_and_next(from_ms(due_at - 1), now);
            let slot = latest.map_or(due_at, ms);
            let late = now - from_ms(slot);
            let skip = late > chrono::Duration::from_std(CATCH_UP).unwrap_or_default();
            match store.cron_claim(job.id, slot, next.map(ms), skip).await {
                Ok(Some(run)) => self.spawn_run(job.id, run, slot),
                Ok(None) if skip => {
                    tracing::warn!(
                        job = job.id,
                        late_secs = late.num_seconds(),
                        "cron slot missed by more than the catch-up window; skipped"
                    )
                }
                Ok(None) => {}
                Err(e) => tracing::error!(job = job.id, error = %e, "cannot claim cron slot"),
            }
        }
        match store.cron_runs_to_resume(ms(now), false).await {
            Ok(retries) => {
                for r in retries {
                    if store.cron_restart(r.id).await.unwrap_or(false) {
                        self.spawn_run(r.job_id, r.id, r.slot);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read cron retries"),
        }
    }

    fn spawn_run(&self, job: i64, run: i64, slot: i64) {
        let coordinator = self.coordinator.clone();
        let clock = self.clock.clone();
        let span = tracing::info_span!("cron", job, run);
        tokio::spawn(
            async move { execute(&coordinator, &*clock, job, run, slot).await }.instrument(span),
        );
    }
}

/// Runs job `job_id` for `slot` as run `run` (also used by `cron run ID`).
pub async fn execute(c: &Coordinator, clock: &dyn Clock, job_id: i64, run: i64, slot: i64) {
    let store = c.store();
    let job = match store.cron_job(job_id).await {
        Ok(Some(j)) => j,
        _ => {
            let _ = store
                .cron_finish(
                    run,
                    "failed",
                    None,
                    Some("the job was removed"),
                    None,
                    None,
                    None,
                )
                .await;
            return;
        }
    };
    if let Some(why) = c.ledger().refusal(&job.agent).await {
        tracing::warn!(job = job.id, reason = %why, "cron run skipped");
        if let Err(e) = store
            .cron_finish(run, "skipped", None, Some(&why), None, None, None)
            .await
        {
            tracing::error!(error = %e, "cannot record cron run");
        }
        return;
    }
    let session = match store
        .session_open(
            &format!("cron:{}:{slot}", job.id),
            SessionKind::Cron,
            &job.agent,
            job.target.as_deref(),
            None,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot open cron session");
            return;
        }
    };
    let ctx = TurnContext {
        agent: job.agent.clone(),
        session,
        origin: job.target.clone(),
        thread: None,
        model: None,
        is_worker: true,
        sender: None,
        cancel: Default::default(),
        live: None,
        task: None,
        purpose: "cron",
    };
    let result = c.agents().run_turn(&ctx, &job.message, c).await;
    let _ = store.session_end(session).await;
    let ws = c.agents().workspace(&job.agent);
    let outcome = match result {
        Ok(t) => {
            let reply = t.reply.trim().to_string();
            let turns = Some((session, t.turns.as_slice()));
            if reply == NO_REPLY {
                store
                    .cron_finish(run, "no_reply", Some(&reply), None, None, turns, None)
                    .await
            } else {
                let post = job.target.as_ref().map(|target| NewOutbox {
                    target: target.clone(),
                    thread: None,
                    reply_to: None,
                    text: reply.clone(),
                    dedupe_key: Some(format!("cron:{}:{slot}", job.id)),
                    file: None,
                });
                let r = store
                    .cron_finish(run, "ok", Some(&reply), None, None, turns, post.as_ref())
                    .await;
                if let (Ok(Some(oid)), Some(p)) = (&r, &post) {
                    c.deliver(*oid, &p.target);
                }
                r
            }
            .map(|_| {
                let short: String = reply.chars().take(300).collect();
                format!("Cron job \"{}\" ran: {short}", job.name)
            })
        }
        Err(e) => {
            let attempts = store
                .cron_run_get(run)
                .await
                .ok()
                .flatten()
                .map_or(0, |r| r.attempts)
                + 1;
            let error = e.to_string();
            if attempts >= MAX_ATTEMPTS {
                tracing::error!(job = job.id, %error, "cron job failed {attempts} times; giving up on this slot");
                c.notices().tell(
                    &format!("cron:{}:failed", job.id),
                    &format!(
                        "Cron job #{} \"{}\" failed {attempts} times in a row: {error}. See `switchboard cron list`.",
                        job.id, job.name
                    ),
                ).await;
                let post = job.target.as_ref().map(|target| NewOutbox {
                    target: target.clone(),
                    thread: None,
                    reply_to: None,
                    text: format!(
                        "⚠️ Cron job #{} \"{}\" failed {attempts} times and was given up for this run: {error}",
                        job.id, job.name
                    ),
                    dedupe_key: Some(format!("cron-failed:{}:{slot}", job.id)),
                    file: None,
                });
                let r = store.cron_finish(run, "failed", None, Some(&error), None, None, post.as_ref()).await;
                if let (Ok(Some(oid)), Some(p)) = (&r, &post) {
                    c.deliver(*oid, &p.target);
                }
                r
            } else {
                let wait = 30_000 * 4i64.pow((attempts - 1) as u32);
                tracing::warn!(job = job.id, %error, retry_in_secs = wait / 1000, "cron run failed; will retry");
                store.cron_finish(run, "error", None, Some(&error), Some(ms(clock.now()) + wait), None, None).await
            }
            .map(|_| format!("Cron job \"{}\" failed (attempt {attempts}): {error}", job.name))
        }
    };
    match outcome {
        Ok(note) => {
            if let Some(ws) = ws
                && let Err(e) = ws.note_today(&note)
            {
                tracing::warn!(error = %e, "cannot write the daily note");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot record cron run"),
    }
}

/// `cron run ID`: runs a job now, outside its schedule.
pub async fn run_now(c: &Coordinator, clock: Arc<dyn Clock>, id: i64) -> Result<String, String> {
    let job = c
        .store()
        .cron_job(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no cron job #{id}"))?;
    let slot = ms(clock.now());
    let run = c
        .store()
        .cron_claim_manual(id, slot)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("a run of this job started this very millisecond")?;
    let c2 = c.clone();
    tokio::spawn(async move { execute(&c2, &*clock, id, run, slot).await });
    Ok(format!("Running cron job #{id} \"{}\" now.", job.name))
}
