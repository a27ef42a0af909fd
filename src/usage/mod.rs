//! Usage and budgets: every model call's tokens and cost, recorded against its agent, chat,
//! session and task; and the spending limits (`budgets`) checked before a turn starts.
//!
//! The router ([`crate::providers::Models`]) reports each answered call through the
//! [`Meter`] trait; this ledger prices it, stores one row, and keeps today's and this month's
//! spending in memory so the budget check before each turn costs no query. The in-memory sums
//! are reloaded from the database when the day changes (in the config's time zone), so a restart
//! or a new day starts from what the database says.

pub mod prices;
pub mod report;

use crate::config::{BudgetsConfig, Config};
use crate::cron::clock::Clock;
use crate::notices::Notices;
use crate::providers::{Call, Meter, Problem, ProviderError, Usage};
use crate::store::{NewUsage, Store};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use prices::Prices;
use std::collections::HashMap;
use std::sync::Arc;

/// Dollars as the ledger counts them (millionths).
pub fn usd(micros: i64) -> String {
    let d = micros as f64 / 1e6;
    if d != 0.0 && d.abs() < 0.01 {
        format!("${d:.4}")
    } else {
        format!("${d:.2}")
    }
}

/// Midnight of `day` in `tz`, as ms since the epoch (the earliest, across a DST change).
pub fn day_start(tz: chrono_tz::Tz, day: NaiveDate) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight).earliest().map_or_else(
        || midnight.and_utc().timestamp_millis(),
        |t| t.timestamp_millis(),
    )
}

/// The first of `day`'s month.
fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

#[derive(Default)]
struct Spent {
    day: Option<NaiveDate>,
    day_total: i64,
    month_total: i64,
    day_by_agent: HashMap<String, i64>,
    month_by_agent: HashMap<String, i64>,
}

pub struct Ledger {
    store: Store,
    clock: Arc<dyn Clock>,
    tz: chrono_tz::Tz,
    prices: Prices,
    budgets: BudgetsConfig,
    notices: Arc<Notices>,
    spent: parking_lot::Mutex<Spent>,
}

impl Ledger {
    pub fn new(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
        notices: Arc<Notices>,
    ) -> Ledger {
        Ledger {
            store,
            clock,
            tz: config.tz(),
            prices: Prices::from_config(config),
            budgets: config.budgets.clone(),
            notices,
            spent: parking_lot::Mutex::default(),
        }
    }

    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }

    /// Makes the sums those of `today`, reloading them from the database when the day changed
    /// (the lock is not held while the database is read).
    async fn roll_over(&self, today: NaiveDate) {
        if self.spent.lock().day == Some(today) {
            return;
        }
        let mut fresh = Spent {
            day: Some(today),
            ..Spent::default()
        };
        let sums = self
            .store
            .usage_cost_by_agent(
                day_start(self.tz, today),
                day_start(self.tz, month_of(today)),
            )
            .await;
        match sums {
            Ok(sums) => {
                for a in sums {
                    fresh.day_total += a.day_micros;
                    fresh.month_total += a.month_micros;
                    fresh.day_by_agent.insert(a.agent.clone(), a.day_micros);
                    fresh.month_by_agent.insert(a.agent, a.month_micros);
                }
            }
            Err(e) => {
                // Without the sums, budgets count from zero: spending is not blocked by a
                // database problem, and the next day tries again.
                tracing::error!(error = %e, "cannot read today's usage; budgets count from zero")
            }
        }
        let mut g = self.spent.lock();
        if g.day != Some(today) {
            *g = fresh;
        }
    }

    /// Loads today's and this month's sums now, at start-up, so the first turn's budget check
    /// does not wait for them (they were two scans of the usage table on the reader's thread,
    /// cold after start-up: ~7 ms of a 12 ms first message in one traced run).
    pub async fn load(&self) {
        self.roll_over(self.today(self.clock.now())).await;
    }

    /// Why a turn of `agent` must not start now (a budget is spent), or `None`. The owner is told
    /// once per budget and period.
    pub async fn refusal(&self, agent: &str) -> Option<String> {
        let now = self.clock.now();
        let today = self.today(now);
        self.roll_over(today).await;
        let (day, month, agent_day, agent_month) = {
            let s = self.spent.lock();
            (
                s.day_total,
                s.month_total,
                s.day_by_agent.get(agent).copied().unwrap_or(0),
                s.month_by_agent.get(agent).copied().unwrap_or(0),
            )
        };
        let per_agent = self.budgets.agents.get(agent);
        let checks = [
            (
                self.budgets.daily_usd,
                day,
                "daily",
                "budgets.dailyUsd",
                None,
            ),
            (
                self.budgets.monthly_usd,
                month,
                "monthly",
                "budgets.monthlyUsd",
                None,
            ),
            (
                per_agent.and_then(|a| a.daily_usd),
                agent_day,
                "daily",
                "dailyUsd",
                Some(agent),
            ),
            (
                per_agent.and_then(|a| a.monthly_usd),
                agent_month,
                "monthly",
                "monthlyUsd",
                Some(agent),
            ),
        ];
        for (limit, spent, period, key, who) in checks {
            let Some(limit) = limit else { continue };
            let limit_micros = (limit * 1e6).round() as i64;
            if spent < limit_micros {
                continue;
            }
            let (key, scope) = match who {
                Some(a) => (
                    format!("budgets.agents.{a}.{key}"),
                    format!("{a}'s {period}"),
                ),
                None => (key.to_string(), format!("the {period}")),
            };
            let resumes = if period == "daily" {
                "tomorrow"
            } else {
                "next month"
            };
            let reason = format!(
                "{} budget is spent ({} of {}, `{key}`); new turns resume {resumes}.",
                capitalise(&scope),
                usd(spent),
                usd(limit_micros),
            );
            let stamp = if period == "daily" {
                today.to_string()
            } else {
                today.format("%Y-%m").to_string()
            };
            self.notices.tell_once(
                &format!("budget:{}:{period}:{stamp}", who.unwrap_or("all")),
                &format!(
                    "Budget reached: {reason} Raise it with `switchboard config set {key} …` if this is expected."
                ),
            ).await;
            return Some(reason);
        }
        None
    }

    /// Today's and this month's spending in millionths of a dollar.
    pub async fn spent(&self) -> (i64, i64) {
        let today = self.today(self.clock.now());
        self.roll_over(today).await;
        let s = self.spent.lock();
        (s.day_total, s.month_total)
    }

    pub fn budgets(&self) -> &BudgetsConfig {
        &self.budgets
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[async_trait::async_trait]
impl Meter for Ledger {
    async fn used(&self, call: &Call, model_ref: &str, usage: &Usage) {
        let now = self.clock.now();
        let (provider, model) = model_ref.split_once('/').unwrap_or(("", model_ref));
        let (cost, priced) = self.prices.cost_micros(model_ref, usage);
        let row = NewUsage {
            at: now.timestamp_millis(),
            provider: provider.to_string(),
            model: model.to_string(),
            input: usage.input_tokens,
            output: usage.output_tokens,
            cache_read: usage.cache_read_tokens,
            cache_write: usage.cache_write_tokens,
            cost_micros: cost,
            priced,
            agent: call.agent.clone(),
            chat: call.chat.clone(),
            session: call.session,
            task: call.task,
            purpose: call.purpose.to_string(),
        };
        let today = self.today(now);
        // Sums of an earlier day are reloaded first; this call is then counted once, below.
        self.roll_over(today).await;
        if let Err(e) = self.store.usage_record_queued(row) {
            tracing::error!(error = %e, "cannot record model usage");
        }
        let mut s = self.spent.lock();
        if s.day == Some(today) {
            s.day_total += cost;
            s.month_total += cost;
            *s.day_by_agent.entry(call.agent.clone()).or_default() += cost;
            *s.month_by_agent.entry(call.agent.clone()).or_default() += cost;
        }
    }

    async fn failing(&self, problem: &Problem, error: &ProviderError) {
        let cause = format!("provider:{}:{}", problem.provider, problem.cause);
        let p = &problem.provider;
        let fix = match problem.cause.as_str() {
            "auth" => format!(
                " Fix: check `providers.{p}.apiKey` (for a subscription login, run `switchboard auth {p}`)."
            ),
            "rate_limited" => " Fix: wait, or add a fallback in `models.fallbacks` so chats are answered meanwhile.".to_string(),
            "network" => format!(
                " Fix: check this machine's network and `providers.{p}.baseUrl`."
            ),
            "refused" | "bad_response" => format!(
                " Fix: check the model names that use `{p}` in `models` (`switchboard doctor`)."
            ),
            _ => " Fix: the provider is having trouble; a fallback in `models.fallbacks` keeps chats answered.".to_string(),
        };
        self.notices
            .tell(
                &cause,
                &format!("Model provider {p} is failing: {error}.{fix}"),
            )
            .await;
    }
}
