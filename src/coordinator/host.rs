//! The coordinator's side of the agent tools: spawning tasks, listing them, sending messages.

use super::Coordinator;
use crate::store::NewOutbox;
use crate::tools::{ToolHost, TurnContext};
use async_trait::async_trait;
use switchboard_channel::Target;

#[async_trait]
impl ToolHost for Coordinator {
    async fn spawn_task(
        &self,
        ctx: &TurnContext,
        agent: Option<&str>,
        prompt: &str,
    ) -> Result<String, String> {
        let origin = ctx
            .origin
            .as_deref()
            .ok_or("this session has no chat to report to")?;
        let agent = agent.unwrap_or(&ctx.agent);
        let id = self
            .start_task(
                agent,
                prompt,
                origin,
                ctx.thread.as_deref(),
                Some(ctx.session),
            )
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "task #{id} started with {agent}; its result will be posted to this chat"
        ))
    }

    async fn list_tasks(&self, ctx: &TurnContext) -> Result<String, String> {
        self.describe_tasks(ctx.origin.as_deref())
            .map_err(|e| e.to_string())
    }

    async fn send_message(&self, to: &str, text: &str) -> Result<String, String> {
        self.send_to(to, text).map(|_| format!("queued for {to}"))
    }

    async fn cron_add(
        &self,
        _ctx: &TurnContext,
        r: crate::tools::CronRequest,
    ) -> Result<String, String> {
        let spec = crate::cron::JobSpec {
            schedule: r.schedule,
            message: r.message,
            target: r.target,
            agent: r.agent,
            tz: r.tz,
            name: r.name,
        };
        let job = crate::cron::add_job(self.config(), self.store(), self.clock().now(), spec)?;
        Ok(format!(
            "scheduled: {}",
            crate::cron::describe(&[job], self.config().tz())
        ))
    }

    async fn cron_list(&self, ctx: &TurnContext) -> Result<String, String> {
        let jobs = self
            .store()
            .cron_jobs(ctx.origin.as_deref())
            .map_err(|e| e.to_string())?;
        Ok(crate::cron::describe(&jobs, self.config().tz()))
    }

    async fn search_memory(&self, ctx: &TurnContext, query: &str) -> Result<String, String> {
        let ws = self
            .agents()
            .workspace(&ctx.agent)
            .ok_or("no workspace for this agent")?;
        self.store()
            .memory_index_files(&ctx.agent, ws.root())
            .map_err(|e| e.to_string())?;
        let hits = self
            .store()
            .memory_search(&ctx.agent, query, 15)
            .map_err(|e| e.to_string())?;
        if hits.is_empty() {
            return Ok("no matches".into());
        }
        Ok(hits
            .iter()
            .map(|h| {
                format!(
                    "{}: {}",
                    h.source,
                    h.text.chars().take(400).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }

    async fn approve(
        &self,
        ctx: &TurnContext,
        tool: &str,
        input: &serde_json::Value,
    ) -> Result<(), String> {
        self.ask_approval(ctx, tool, input).await
    }

    async fn remember(&self, ctx: &TurnContext, text: &str, today: bool) -> Result<String, String> {
        let ws = self
            .agents()
            .workspace(&ctx.agent)
            .ok_or("no workspace for this agent")?;
        let res = if today {
            ws.note_today(text)
        } else {
            ws.remember(text)
        };
        res.map(|_| "saved".to_string())
            .map_err(|e| format!("could not save: {e}"))
    }

    async fn cron_remove(&self, id: i64) -> Result<String, String> {
        match self.store().cron_remove(id) {
            Ok(true) => Ok(format!("removed cron job #{id}")),
            Ok(false) => Err(format!("no cron job #{id}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Coordinator {
    /// Validates `to` and queues `text` for it (the `send` CLI, the send tool).
    pub fn send_to(&self, to: &str, text: &str) -> Result<(), String> {
        let target: Target = to
            .parse()
            .map_err(|e: switchboard_channel::TargetError| e.to_string())?;
        if self.channels().get(&target.channel).is_none() {
            return Err(format!(
                "the {} channel is not enabled (set its token in the config)",
                target.channel
            ));
        }
        if text.trim().is_empty() {
            return Err("nothing to send".into());
        }
        self.post(&NewOutbox {
            target: target.to_string(),
            thread: None,
            reply_to: None,
            text: text.to_string(),
            dedupe_key: None,
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// A short list of tasks (of one chat, or all), for `/tasks` and the tool.
    pub fn describe_tasks(&self, origin: Option<&str>) -> crate::store::Result<String> {
        let tasks = self.store().tasks_recent(origin)?;
        if tasks.is_empty() {
            return Ok("No tasks.".into());
        }
        Ok(tasks
            .iter()
            .take(15)
            .map(|t| {
                let prompt: String = t.prompt.chars().take(60).collect();
                format!("#{} {} [{}] {}", t.id, t.agent, t.status.as_str(), prompt)
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
