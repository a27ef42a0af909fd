//! Heartbeat: every `heartbeat.every` within `activeHours`, an isolated run of the agent with
//! HEARTBEAT.md in its prompt. A reply of exactly `HEARTBEAT_OK` (or nothing) posts nothing;
//! anything else goes to `heartbeat.to` (or the owner).
//!
//! Slots are aligned to local midnight (every 30 minutes means :00 and :30), so a restart keeps
//! the same schedule. Each slot is claimed in the database before it runs: a slot never runs
//! twice, runs never overlap (a slot due while the previous run is still going is recorded as
//! skipped), and after downtime only the latest missed slot runs — once, not once per missed slot.
//! Slots outside the active hours are not run and not queued for later.

use crate::config::{ActiveHours, Config};
use crate::coordinator::Coordinator;
use crate::cron::clock::Clock;
use crate::store::{NewOutbox, SessionKind};
use crate::tools::TurnContext;
use chrono::{DateTime, TimeZone, Timelike, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A reply that is exactly this posts nothing.
pub const HEARTBEAT_OK: &str = "HEARTBEAT_OK";

/// The instruction of each run when `heartbeat.prompt` is not set.
const DEFAULT_PROMPT: &str = "This is a scheduled heartbeat, not a message from a person. Read the \
checklist below (HEARTBEAT.md) and check what it asks, using your tools where needed. If nothing \
needs a person's attention, reply with exactly HEARTBEAT_OK and nothing else. Otherwise reply with \
a short message for the owner saying what needs attention and why.";

/// The heartbeat's settings, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub every: Duration,
    pub hours: Option<ActiveHours>,
    pub agent: String,
    pub to: Option<String>,
    pub prompt: String,
    pub tz: chrono_tz::Tz,
}

impl Plan {
    /// The plan of `config`, or `None` when no heartbeat is configured (validation has already
    /// refused bad values; a bad one here turns the heartbeat off with an error line).
    pub fn from_config(config: &Config) -> Option<Plan> {
        let h = config.heartbeat.as_ref()?;
        let (every, hours) = match (h.interval(), h.hours()) {
            (Ok(e), Ok(h)) => (e, h),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "heartbeat is off");
                return None;
            }
        };
        Some(Plan {
            every,
            hours,
            agent: h
                .agent
                .clone()
                .unwrap_or_else(|| config.coordinator().to_string()),
            to: h.to.clone().or_else(|| config.owner.clone()),
            prompt: h.prompt.clone().unwrap_or_else(|| DEFAULT_PROMPT.into()),
            tz: config.tz(),
        })
    }

    /// The latest slot at or before `t`.
    pub fn slot_at(&self, t: DateTime<Utc>) -> i64 {
        let day = t.with_timezone(&self.tz).date_naive();
        let midnight = crate::usage::day_start(self.tz, day);
        let every = self.every.as_millis() as i64;
        let ms = t.timestamp_millis();
        midnight + (ms - midnight).max(0) / every * every
    }

    /// The first slot after `t` (a day's last slot is followed by the next midnight).
    pub fn next_after(&self, t: DateTime<Utc>) -> i64 {
        let next = self.slot_at(t) + self.every.as_millis() as i64;
        let day = t.with_timezone(&self.tz).date_naive();
        let tomorrow = day
            .succ_opt()
            .map_or(i64::MAX, |d| crate::usage::day_start(self.tz, d));
        next.min(tomorrow)
    }

    /// The first slot after `t` inside the active hours (`None` if none within two days, which
    /// validation makes impossible).
    pub fn next_active_after(&self, t: DateTime<Utc>) -> Option<i64> {
        let mut next = self.next_after(t);
        let horizon = t.timestamp_millis() + 2 * 86_400_000;
        while !self.active(next) {
            if next > horizon {
                return None;
            }
            next = self.next_after(from_ms(next));
        }
        Some(next)
    }

    /// Whether `slot` is inside the active hours.
    pub fn active(&self, slot: i64) -> bool {
        let Some(hours) = self.hours else { return true };
        let local = from_ms(slot).with_timezone(&self.tz);
        hours.contains(local.hour() * 60 + local.minute())
    }
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// What the running scheduler is doing, for `gateway status`.
#[derive(Default)]
pub struct State {
    /// The next slot it will run (ms), 0 before it started.
    next: AtomicI64,
    running: AtomicBool,
}

impl State {
    pub fn next_ms(&self) -> Option<i64> {
        Some(self.next.load(Ordering::Acquire)).filter(|&n| n > 0 && n < i64::MAX)
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// The heartbeat task. Clones share its state (`gateway status` reads it).
#[derive(Clone)]
pub struct Heartbeat {
    coordinator: Coordinator,
    clock: Arc<dyn Clock>,
    plan: Plan,
    state: Arc<State>,
}

impl Heartbeat {
    pub fn new(coordinator: Coordinator, clock: Arc<dyn Clock>, plan: Plan) -> Heartbeat {
        Heartbeat {
            coordinator,
            clock,
            plan,
            state: Arc::default(),
        }
    }

    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let store = self.coordinator.store().clone();
        match store.heartbeat_interrupted().await {
            Ok(n) if n > 0 => tracing::info!(runs = n, "heartbeat runs interrupted by a stop"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read heartbeat runs"),
        }
        let now = self.clock.now();
        // After downtime the latest missed slot runs once; a first start waits for the next slot.
        let upcoming = |t| self.plan.next_active_after(t).unwrap_or(i64::MAX);
        let mut next = match store.heartbeat_last_slot().await {
            Ok(Some(last))
                if self.plan.slot_at(now) > last && self.plan.active(self.plan.slot_at(now)) =>
            {
                self.plan.slot_at(now)
            }
            _ => upcoming(now),
        };
        tracing::info!(
            every_secs = self.plan.every.as_secs(),
            agent = %self.plan.agent,
            next = %from_ms(next),
            "heartbeat scheduled"
        );
        loop {
            let now = self.clock.now();
            if now.timestamp_millis() >= next {
                // The latest due slot: a clock that jumped ahead fires once, not per slot.
                self.fire(self.plan.slot_at(now).max(next)).await;
                next = upcoming(now);
            } else {
                // A clock stepped back (NTP, a test) must not leave the next slot far ahead.
                next = next.min(upcoming(now));
            }
            self.state.next.store(next, Ordering::Release);
            let wait = (next - self.clock.now().timestamp_millis())
                .clamp(1, self.clock.recheck_every().as_millis() as i64);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
        }
    }

    /// Runs (or records why it skips) the slot `slot`.
    async fn fire(&self, slot: i64) {
        if !self.plan.active(slot) {
            tracing::debug!(slot = %from_ms(slot), "heartbeat outside active hours");
            return;
        }
        let store = self.coordinator.store();
        let skip = if self.state.running() {
            Some("the previous heartbeat is still running".to_string())
        } else {
            self.coordinator.ledger().refusal(&self.plan.agent).await
        };
        let run = match store.heartbeat_claim(slot, skip.as_deref()).await {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim the heartbeat slot");
                return;
            }
        };
        if let Some(why) = skip {
            tracing::warn!(reason = %why, "heartbeat skipped");
            return;
        }
        self.state.running.store(true, Ordering::Release);
        let state = self.state.clone();
        let c = self.coordinator.clone();
        let plan = self.plan.clone();
        let span = tracing::info_span!("heartbeat", run, slot);
        tokio::spawn(
            async move {
                execute(&c, &plan, run, slot).await;
                state.running.store(false, Ordering::Release);
            }
            .instrument(span),
        );
    }
}

/// One heartbeat run.
async fn execute(c: &Coordinator, plan: &Plan, run: i64, slot: i64) {
    let store = c.store();
    let finish = |status: &'static str, reply: Option<String>, error: Option<String>| {
        let store = store.clone();
        async move {
            let (reply, error) = (reply.as_deref(), error.as_deref());
            if let Err(e) = store.heartbeat_finish(run, status, reply, error).await {
                tracing::error!(error = %e, "cannot record the heartbeat run");
            }
        }
    };
    let Some(ws) = c.agents().workspace(&plan.agent) else {
        finish(
            "failed",
            None,
            Some(format!("no agent named `{}`", plan.agent)),
        )
        .await;
        return;
    };
    let checklist = ws.heartbeat();
    let session = match store
        .session_open(
            &format!("heartbeat:{slot}"),
            SessionKind::Heartbeat,
            &plan.agent,
            plan.to.as_deref(),
            None,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            finish("failed", None, Some(e.to_string())).await;
            return;
        }
    };
    let ctx = TurnContext {
        agent: plan.agent.clone(),
        session,
        origin: plan.to.clone(),
        thread: None,
        model: None,
        is_worker: true,
        sender: None,
        cancel: Default::default(),
        live: None,
        task: None,
        purpose: "heartbeat",
    };
    let message = format!(
        "{}\n\n<file name=\"HEARTBEAT.md\">\n{}\n</file>",
        plan.prompt,
        checklist.trim()
    );
    let result = c.agents().run_turn(&ctx, &message, c).await;
    let _ = store.session_end(session).await;
    let reply = match result {
        Ok(t) => t.reply.trim().to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat run failed");
            finish("failed", None, Some(e.to_string())).await;
            return;
        }
    };
    if reply.is_empty() || reply == HEARTBEAT_OK {
        finish("ok", Some(reply.to_string()), None).await;
        return;
    }
    let Some(to) = &plan.to else {
        tracing::warn!(%reply, "heartbeat has something to say but no `heartbeat.to` or `owner`");
        finish(
            "ok",
            Some(reply.to_string()),
            Some("nowhere to post: set heartbeat.to or owner".into()),
        )
        .await;
        return;
    };
    let post = NewOutbox {
        target: to.clone(),
        thread: None,
        reply_to: None,
        text: reply.clone(),
        dedupe_key: Some(format!("heartbeat:{slot}")),
        file: None,
    };
    match store.outbox_enqueue(&post).await {
        Ok(Some(id)) => c.deliver(id, to),
        Ok(None) => {}
        Err(e) => {
            finish("failed", Some(reply.to_string()), Some(e.to_string())).await;
            return;
        }
    }
    finish("posted", Some(reply.to_string()), None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(every: &str, hours: Option<&str>) -> Plan {
        Plan {
            every: crate::config::parse_every(every).unwrap(),
            hours: hours.map(|h| ActiveHours::parse(h).unwrap()),
            agent: "jarvis".into(),
            to: None,
            prompt: String::new(),
            tz: "Europe/London".parse().unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn slots_align_to_local_midnight_and_respect_active_hours() {
        let p = plan("30m", Some("08:00-22:00"));
        // London is UTC+1 in summer: 09:40 UTC is 10:40 local, slot 10:30 local.
        assert_eq!(
            p.slot_at(at("2026-07-01T09:40:00Z")),
            at("2026-07-01T09:30:00Z").timestamp_millis()
        );
        assert_eq!(
            p.next_after(at("2026-07-01T09:40:00Z")),
            at("2026-07-01T10:00:00Z").timestamp_millis()
        );
        assert!(
            p.active(at("2026-07-01T07:00:00Z").timestamp_millis()),
            "08:00 local"
        );
        assert!(
            !p.active(at("2026-07-01T06:30:00Z").timestamp_millis()),
            "07:30 local"
        );
        assert!(
            !p.active(at("2026-07-01T21:00:00Z").timestamp_millis()),
            "22:00 local"
        );
        // Seven hours do not divide a day: the last slot of the day is followed by midnight.
        let p = plan("7h", None);
        assert_eq!(
            p.next_after(at("2026-12-01T21:30:00Z")),
            at("2026-12-02T00:00:00Z").timestamp_millis()
        );
    }
}
