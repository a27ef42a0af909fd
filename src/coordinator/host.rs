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
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "task #{id} started with {agent}; its result will be posted to this chat"
        ))
    }

    async fn list_tasks(&self, ctx: &TurnContext) -> Result<String, String> {
        self.describe_tasks(ctx.origin.as_deref())
            .await
            .map_err(|e| e.to_string())
    }

    async fn send_message(&self, to: &str, text: &str) -> Result<String, String> {
        self.send_to(to, text)
            .await
            .map(|_| format!("queued for {to}"))
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
        let job =
            crate::cron::add_job(self.config(), self.store(), self.clock().now(), spec).await?;
        Ok(format!(
            "scheduled: {}",
            crate::cron::describe(&[job], self.config().tz())
        ))
    }

    async fn cron_list(&self, ctx: &TurnContext) -> Result<String, String> {
        let jobs = self
            .store()
            .cron_jobs(ctx.origin.as_deref())
            .await
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
            .await
            .map_err(|e| e.to_string())?;
        let hits = self
            .store()
            .memory_search(&ctx.agent, query, 15)
            .await
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

    async fn send_file(
        &self,
        ctx: &TurnContext,
        to: Option<&str>,
        path: &str,
        caption: &str,
    ) -> Result<String, String> {
        let ws = self
            .agents()
            .workspace(&ctx.agent)
            .ok_or("no workspace for this agent")?;
        let root = ws
            .root()
            .canonicalize()
            .map_err(|e| format!("cannot open the workspace: {e}"))?;
        let asked = std::path::Path::new(path);
        let full = if asked.is_absolute() {
            asked.to_path_buf()
        } else {
            root.join(asked)
        };
        let full = full
            .canonicalize()
            .map_err(|_| format!("no file `{path}` in your workspace"))?;
        if !full.starts_with(&root) {
            return Err(format!(
                "refused: `{path}` is outside your workspace; only files in it can be sent"
            ));
        }
        let (to, thread) = match to {
            Some(t) => (t.to_string(), None),
            None => (
                ctx.origin
                    .clone()
                    .ok_or("this run has no chat; say where to send it with `to`")?,
                ctx.thread.as_deref(),
            ),
        };
        self.send_file_to(&to, thread, &full, caption).await
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
        match self.store().cron_remove(id).await {
            Ok(true) => Ok(format!("removed cron job #{id}")),
            Ok(false) => Err(format!("no cron job #{id}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Coordinator {
    /// `to` parsed, with its channel, which must be enabled.
    fn enabled_target(
        &self,
        to: &str,
    ) -> Result<(Target, &switchboard_channel::ChannelHandle), String> {
        let target: Target = to
            .parse()
            .map_err(|e: switchboard_channel::TargetError| e.to_string())?;
        let channel = self.channels().get(&target.channel).ok_or_else(|| {
            format!(
                "the {} channel is not enabled (set its token in the config)",
                target.channel
            )
        })?;
        Ok((target, channel))
    }

    /// Validates `to` and queues the file at `path` for it, with `caption` (the `send_file` tool,
    /// `send --file`). The file is copied first, so what is sent is what was asked for.
    pub async fn send_file_to(
        &self,
        to: &str,
        thread: Option<&str>,
        path: &std::path::Path,
        caption: &str,
    ) -> Result<String, String> {
        let (target, channel) = self.enabled_target(to)?;
        let files = channel
            .files()
            .ok_or_else(|| format!("the {} channel cannot post files", target.channel))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("`{}` is not a file", path.display()))?;
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("`{}` is not a file", path.display()));
        }
        let limit = files.max_file_bytes();
        if meta.len() > limit {
            return Err(format!(
                "`{name}` is {:.1} MB; {} takes files up to {:.0} MB",
                meta.len() as f64 / 1_048_576.0,
                target.channel,
                limit as f64 / 1_048_576.0
            ));
        }
        let dir = self.config().state_dir().join("outbox-files");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot store the file: {e}"))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let copy = dir.join(format!("{stamp}-{name}"));
        std::fs::copy(path, &copy).map_err(|e| format!("cannot store the file: {e}"))?;
        let mime = mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_string();
        let queued = self
            .post(&NewOutbox {
                target: target.to_string(),
                thread: thread.map(str::to_string),
                reply_to: None,
                text: caption.to_string(),
                dedupe_key: None,
                file: Some(crate::store::OutboxFile {
                    path: copy.display().to_string(),
                    name: name.clone(),
                    mime,
                    voice: None,
                }),
            })
            .await;
        match queued {
            Ok(_) => Ok(format!("`{name}` queued for {to}")),
            Err(e) => {
                let _ = std::fs::remove_file(&copy);
                Err(e.to_string())
            }
        }
    }

    /// Validates `to` and queues `text` for it (the `send` CLI, the send tool).
    pub async fn send_to(&self, to: &str, text: &str) -> Result<(), String> {
        let (target, _) = self.enabled_target(to)?;
        if text.trim().is_empty() {
            return Err("nothing to send".into());
        }
        self.post(&NewOutbox {
            target: target.to_string(),
            thread: None,
            reply_to: None,
            text: text.to_string(),
            dedupe_key: None,
            file: None,
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// A short list of tasks (of one chat, or all), for `/tasks` and the tool.
    pub async fn describe_tasks(&self, origin: Option<&str>) -> crate::store::Result<String> {
        let tasks = self.store().tasks_recent(origin).await?;
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
