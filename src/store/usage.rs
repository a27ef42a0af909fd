//! What every model call used and cost. The accounting (prices, budgets) is in `crate::usage`;
//! this is the ledger's storage: one row per call, summed by time range and grouped on demand.

use super::sql::{Db, Row, p};
use super::{Result, Store};

/// One model call to record.
#[derive(Debug, Clone, Default)]
pub struct NewUsage {
    pub at: i64,
    pub provider: String,
    pub model: String,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    /// Cost in millionths of a US dollar.
    pub cost_micros: i64,
    /// Whether a price was known for the model (an unpriced call counts as free).
    pub priced: bool,
    pub agent: String,
    pub chat: Option<String>,
    pub session: Option<i64>,
    pub task: Option<i64>,
    /// `chat`, `task`, `cron`, `heartbeat` or `compaction`.
    pub purpose: String,
}

/// One agent's spending since the start of the day and of the month (see
/// [`Store::usage_cost_by_agent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCost {
    pub agent: String,
    pub day_micros: i64,
    pub month_micros: i64,
}

/// How a report groups the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageBy {
    Agent,
    Chat,
    Model,
}

impl UsageBy {
    fn column(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Chat => "coalesce(chat, '(' || purpose || ')')",
            Self::Model => "provider || '/' || model",
        }
    }
}

/// Calls summed: one line of a report, or a total.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageLine {
    /// The group (an agent, a chat, a `provider/model`); empty for a total.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    pub calls: u64,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub cost_micros: i64,
    /// Calls whose model has no known price.
    pub unpriced: u64,
}

/// Sums are cast back to integers: PostgreSQL sums BIGINTs as NUMERIC.
const SUMS: &str = "count(*), CAST(coalesce(sum(input), 0) AS BIGINT),
    CAST(coalesce(sum(output), 0) AS BIGINT), CAST(coalesce(sum(cache_read), 0) AS BIGINT),
    CAST(coalesce(sum(cache_write), 0) AS BIGINT), CAST(coalesce(sum(cost_micros), 0) AS BIGINT),
    CAST(coalesce(sum(1 - priced), 0) AS BIGINT)";

fn line(key: String, r: &Row, at: usize) -> Result<UsageLine> {
    Ok(UsageLine {
        key,
        calls: r.get::<i64>(at)? as u64,
        input: r.get::<i64>(at + 1)? as u64,
        output: r.get::<i64>(at + 2)? as u64,
        cache_read: r.get::<i64>(at + 3)? as u64,
        cache_write: r.get::<i64>(at + 4)? as u64,
        cost_micros: r.get(at + 5)?,
        unpriced: r.get::<i64>(at + 6)? as u64,
    })
}

/// One model call's usage.
pub(super) const INSERT: &str = "INSERT INTO usage (at, provider, model, input, output, cache_read,
 cache_write, cost_micros, priced, agent, chat, session_id, task_id, purpose)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

fn insert_usage(c: &Db, u: &NewUsage) -> Result<()> {
    c.run(
        INSERT,
        p![
            u.at,
            u.provider,
            u.model,
            u.input as i64,
            u.output as i64,
            u.cache_read as i64,
            u.cache_write as i64,
            u.cost_micros,
            u.priced,
            u.agent,
            u.chat,
            u.session,
            u.task,
            u.purpose,
        ],
    )?;
    Ok(())
}

impl Store {
    pub async fn usage_record(&self, u: &NewUsage) -> Result<()> {
        let u = u.clone();
        self.write(move |c| insert_usage(c, &u)).await
    }

    /// [`Store::usage_record`] without waiting for the commit: a model call's record is not
    /// worth a wait on the message path. The reply stored after it commits with it or later.
    pub fn usage_record_queued(&self, u: NewUsage) -> Result<()> {
        self.write_queued("model usage", move |c| insert_usage(c, &u))
    }

    /// Cost per agent since `day` and since `month` (ms; `day` is the later), in one scan: what
    /// budgets start from after a restart or at a new day.
    pub async fn usage_cost_by_agent(&self, day: i64, month: i64) -> Result<Vec<AgentCost>> {
        self.scan(move |c| {
            c.all(
                "SELECT agent,
                        CAST(coalesce(sum(CASE WHEN at >= ?1 THEN cost_micros ELSE 0 END), 0) AS BIGINT),
                        CAST(coalesce(sum(cost_micros), 0) AS BIGINT)
                 FROM usage WHERE at >= ?2 GROUP BY agent",
                p![day, month.min(day)],
                |r| {
                    Ok(AgentCost {
                        agent: r.get(0)?,
                        day_micros: r.get(1)?,
                        month_micros: r.get(2)?,
                    })
                },
            )
        })
        .await
    }

    /// The sums of calls in `[since, until)`, for one chat when `chat` is given.
    pub async fn usage_total(
        &self,
        since: i64,
        until: i64,
        chat: Option<&str>,
    ) -> Result<UsageLine> {
        let chat = chat.map(str::to_owned);
        self.scan(move |c| {
            let sql = format!(
                "SELECT {SUMS} FROM usage WHERE at >= ?1 AND at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR chat = ?3)"
            );
            c.one(&sql, p![since, until, chat], |r| line(String::new(), r, 0))
        })
        .await
    }

    /// The calls in `[since, until)` grouped by `by`, most expensive first.
    pub async fn usage_report(
        &self,
        since: i64,
        until: i64,
        by: UsageBy,
    ) -> Result<Vec<UsageLine>> {
        self.scan(move |c| {
            let sql = format!(
                "SELECT {} AS k, {SUMS} FROM usage WHERE at >= ?1 AND at < ?2
                 GROUP BY k ORDER BY sum(cost_micros) DESC, count(*) DESC, k",
                by.column()
            );
            let rows = c.all(&sql, p![since, until], |r| line(r.get(0)?, r, 1))?;
            Ok(rows)
        })
        .await
    }
}
