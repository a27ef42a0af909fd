//! The agent loop: build the prompt from the workspace and the session, call the model, run the
//! tools it asks for, repeat (bounded), and store every turn as it happens.

mod compaction;
pub mod tokens;
pub mod workspace;

use crate::config::Config;
use crate::providers::{AllFailed, Block, Message, Models, Request, Role, TextSink};
use crate::store::{NewTurn, Store, StoreError};
use crate::tools::Toolbox;
use crate::tools::skills::Skill;
pub use crate::tools::{ToolHost, TurnContext};
use std::collections::HashMap;
use std::sync::Arc;
pub use workspace::Workspace;

/// Tool rounds per turn before we stop and answer with what we have.
const MAX_STEPS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Models(#[from] AllFailed),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no agent named `{0}`")]
    UnknownAgent(String),
}

/// The part of `text` that fits in `budget` characters (its start, or its end when `keep_tail`,
/// cut at a line), and how many characters were left out.
fn fit(text: &str, budget: usize, keep_tail: bool) -> (String, usize) {
    let total = text.chars().count();
    if total <= budget {
        return (text.to_string(), 0);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut used = 0;
    let order: Box<dyn Iterator<Item = &&str>> = if keep_tail {
        Box::new(lines.iter().rev())
    } else {
        Box::new(lines.iter())
    };
    for l in order {
        let n = l.chars().count() + 1;
        if used + n > budget {
            break;
        }
        used += n;
        kept.push(l);
    }
    if keep_tail {
        kept.reverse();
    }
    let kept = kept.join("\n");
    let dropped = total - kept.chars().count();
    (kept, dropped)
}

/// A turn's reply as the model writes it, for the chat's live preview: each step's text, once it
/// begins, replaces the one before (the reply is the last step's text, as in a whole answer).
struct LiveText<'a> {
    to: &'a tokio::sync::watch::Sender<String>,
    /// The current step's text so far (`None` before its first delta).
    step: parking_lot::Mutex<Option<String>>,
}

impl<'a> LiveText<'a> {
    fn new(to: &'a tokio::sync::watch::Sender<String>) -> Self {
        Self {
            to,
            step: parking_lot::Mutex::new(None),
        }
    }

    /// The text being written now (empty between steps).
    fn partial(&self) -> String {
        self.step.lock().clone().unwrap_or_default()
    }

    fn step_done(&self) {
        *self.step.lock() = None;
    }
}

impl TextSink for LiveText<'_> {
    fn delta(&self, text: &str) {
        let mut step = self.step.lock();
        let first = step.is_none();
        step.get_or_insert_with(String::new).push_str(text);
        let shown = step.as_deref().unwrap_or_default();
        if first {
            self.to.send_replace(shown.to_string());
        } else {
            self.to.send_modify(|s| s.push_str(text));
        }
    }

    fn restart(&self) {
        *self.step.lock() = None;
    }
}

/// What a turn produced: the reply, and the turns to store with it.
#[derive(Debug)]
pub struct TurnResult {
    pub reply: String,
    pub turns: Vec<NewTurn>,
    /// How large the session's context now is, in tokens (the provider's count of the last
    /// request plus its answer; estimated when the provider gives none).
    pub context_tokens: u64,
}

/// What a turn stopped by `/stop` answers: the text it had, marked as stopped. The answer is
/// stored as the assistant's turn, so the next message is not run together with the stopped one.
fn stopped(last_text: String, mut turns: Vec<NewTurn>, context_tokens: u64) -> TurnResult {
    let reply = if last_text.trim().is_empty() {
        "⏹ Stopped.".to_string()
    } else {
        format!("{last_text}\n\n⏹ (stopped)")
    };
    let marker = Message {
        role: Role::Assistant,
        content: vec![Block::Text {
            text: format!("{reply} [the user stopped this answer]"),
        }],
    };
    if let Ok(t) = new_turn(&marker, 0) {
        turns.push(t);
    }
    TurnResult {
        reply,
        turns,
        context_tokens,
    }
}

fn new_turn(m: &Message, tokens: u64) -> Result<NewTurn, AgentError> {
    Ok(NewTurn {
        role: match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        },
        content: serde_json::to_string(&m.content)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        tokens,
    })
}

/// Every configured agent, with its workspace and model.
pub struct Agents {
    config: Arc<Config>,
    models: Arc<Models>,
    store: Store,
    workspaces: HashMap<String, Workspace>,
    tools: Toolbox,
    /// Malformed skills already warned about (file and reason).
    warned_skills: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// Each agent's skills as last found, and the file-change generation they were found in.
    skills_seen: parking_lot::Mutex<HashMap<String, (crate::watched::Generation, Vec<Skill>)>>,
}

impl Agents {
    /// The model router (its provider health feeds `gateway status`).
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// The tools agents are offered (MCP servers among them).
    pub fn tools(&self) -> &Toolbox {
        &self.tools
    }

    /// Opens each agent's workspace (creating starter files on first run).
    pub fn new(
        config: Arc<Config>,
        models: Arc<Models>,
        store: Store,
        mcp: Arc<crate::tools::mcp::Servers>,
    ) -> std::io::Result<Agents> {
        let tz = config.tz();
        // Made now so that it can be watched for skills: a missing folder would be watched
        // through the state dir, whose database files change with every message.
        std::fs::create_dir_all(config.state_dir().join("skills"))?;
        let mut workspaces = HashMap::new();
        for name in config.agents.keys() {
            workspaces.insert(
                name.clone(),
                Workspace::open(&config.workspace(name), name, tz)?,
            );
        }
        Ok(Agents {
            tools: Toolbox::new(config.clone(), mcp),
            config,
            models,
            store,
            workspaces,
            warned_skills: Default::default(),
            skills_seen: Default::default(),
        })
    }

    pub fn exists(&self, name: &str) -> bool {
        self.workspaces.contains_key(name)
    }

    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.workspaces.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    pub fn workspace(&self, name: &str) -> Option<&Workspace> {
        self.workspaces.get(name)
    }

    /// The role or `provider/model` a turn uses: the chat's `/model` choice, else the agent's.
    pub(crate) fn role_for(&self, ctx: &TurnContext) -> String {
        ctx.model.clone().unwrap_or_else(|| {
            self.config
                .agents
                .get(&ctx.agent)
                .and_then(|a| a.model.clone())
                .unwrap_or_else(|| "default".into())
        })
    }

    /// The system prompt and history a turn in `ctx.session` would send (for diagnostics and
    /// benchmarks): the prompt text and the number of history messages.
    pub async fn assemble(&self, ctx: &TurnContext) -> Result<(String, usize), AgentError> {
        let ws = self
            .workspaces
            .get(&ctx.agent)
            .ok_or_else(|| AgentError::UnknownAgent(ctx.agent.clone()))?;
        let skills = self.skills(&ctx.agent);
        let (history, summary) = self.context(ctx.session).await?;
        Ok((
            self.system_prompt(ws, ctx, &skills, summary.as_deref()),
            history.len(),
        ))
    }

    /// Whether `role_or_ref` names a configured role or a `provider/model` of a configured provider.
    pub fn model_exists(&self, role_or_ref: &str) -> bool {
        self.config.models.roles.contains_key(role_or_ref)
            || role_or_ref
                .split_once('/')
                .is_some_and(|(p, m)| !m.is_empty() && self.config.providers.contains_key(p))
    }

    pub fn resolve_model(&self, role_or_ref: &str) -> String {
        self.models.resolve(role_or_ref)
    }

    /// The `provider/model` the agent uses.
    pub fn model_of(&self, name: &str) -> String {
        let role = self
            .config
            .agents
            .get(name)
            .and_then(|a| a.model.as_deref())
            .unwrap_or("default");
        self.models.resolve(role)
    }

    /// Runs one user turn in `ctx.session`. Returns the reply and the turns to store; the caller
    /// stores them together with the reply, so a turn is recorded whole or not at all.
    pub async fn run_turn(
        &self,
        ctx: &TurnContext,
        user_text: &str,
        host: &dyn ToolHost,
    ) -> Result<TurnResult, AgentError> {
        self.run_turn_with(ctx, user_text, Vec::new(), host).await
    }

    /// [`Agents::run_turn`] with more of the user's message than its text: images and files
    /// they sent.
    pub async fn run_turn_with(
        &self,
        ctx: &TurnContext,
        user_text: &str,
        attached: Vec<Block>,
        host: &dyn ToolHost,
    ) -> Result<TurnResult, AgentError> {
        let ws = self
            .workspaces
            .get(&ctx.agent)
            .ok_or_else(|| AgentError::UnknownAgent(ctx.agent.clone()))?;
        let role = self.role_for(ctx);
        let (history, summary) = self.context(ctx.session).await?;
        let mut messages = std::sync::Arc::new(history);
        let mut user = Message::user(user_text);
        if user_text.trim().is_empty() && !attached.is_empty() {
            user.content.clear(); // providers refuse empty text blocks
        }
        user.content.extend(attached);
        let mut turns = vec![new_turn(&user, 0)?];
        std::sync::Arc::make_mut(&mut messages).push(user);
        let skills = self.skills(&ctx.agent);
        let system = self.system_prompt(ws, ctx, &skills, summary.as_deref());
        let tools = std::sync::Arc::new(self.tools.specs(ctx, &skills));
        let mut last_text = String::new();
        let mut context_tokens = 0;
        let live = ctx.live.as_deref().map(LiveText::new);
        let call = meter_call(ctx, None);
        for _ in 0..MAX_STEPS {
            let req = Request {
                model: String::new(),
                system: system.clone(),
                messages: messages.clone(),
                tools: tools.clone(),
                max_tokens: 4096,
            };
            let estimate = tokens::estimate(&req.system, &req.messages);
            let sink = live.as_ref().map(|l| l as &dyn TextSink);
            let (resp, used) = tokio::select! {
                r = self.models.complete_streaming(&role, req, sink, &call) => r?,
                _ = ctx.cancel.cancelled() => {
                    // What was being written when the user stopped it is the partial answer.
                    let partial = live.as_ref().map(LiveText::partial).unwrap_or_default();
                    let kept = if partial.trim().is_empty() { last_text } else { partial };
                    return Ok(stopped(kept, turns, context_tokens));
                }
            };
            if let Some(l) = &live {
                l.step_done();
            }
            tracing::debug!(model = %used, tokens = resp.usage.output_tokens, "model answered");
            context_tokens = if resp.usage.prompt_tokens() > 0 {
                resp.usage.prompt_tokens() + resp.usage.output_tokens
            } else {
                estimate + resp.usage.output_tokens
            };
            let reply = Message {
                role: Role::Assistant,
                content: resp.content,
            };
            turns.push(new_turn(&reply, resp.usage.output_tokens)?);
            let text = reply.text();
            if !text.trim().is_empty() {
                last_text = text;
            }
            let calls: Vec<(String, String, serde_json::Value)> = reply
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            // The request (and its reference) is gone by now, so this does not copy.
            std::sync::Arc::make_mut(&mut messages).push(reply);
            if calls.is_empty() {
                return Ok(TurnResult {
                    reply: last_text,
                    turns,
                    context_tokens,
                });
            }
            let mut results = Vec::with_capacity(calls.len());
            let mut cancelled = false;
            for (id, name, input) in calls {
                // Once stopped, the remaining calls are answered without running, so the stored
                // history keeps every call paired with a result.
                let out = if cancelled {
                    crate::tools::ToolOutput::error("not run: the user stopped this turn")
                } else {
                    tokio::select! {
                        out = self.tools.run(&name, &input, &skills, ctx, host) => out,
                        _ = ctx.cancel.cancelled() => {
                            cancelled = true;
                            crate::tools::ToolOutput::error("cancelled: the user stopped this turn")
                        }
                    }
                };
                tracing::debug!(tool = %name, error = out.is_error, "tool ran");
                results.push(Block::ToolResult {
                    tool_use_id: id,
                    content: out.text,
                    is_error: out.is_error,
                    images: out.images,
                });
            }
            let results = Message {
                role: Role::User,
                content: results,
            };
            turns.push(new_turn(&results, 0)?);
            std::sync::Arc::make_mut(&mut messages).push(results);
            if cancelled || ctx.cancel.is_cancelled() {
                return Ok(stopped(last_text, turns, context_tokens));
            }
        }
        let reply = if last_text.is_empty() {
            format!("(stopped after {MAX_STEPS} tool steps without a final answer)")
        } else {
            last_text
        };
        Ok(TurnResult {
            reply,
            turns,
            context_tokens,
        })
    }

    pub(crate) async fn history(
        &self,
        session: crate::store::SessionId,
    ) -> Result<Vec<Message>, AgentError> {
        Ok(messages(self.store.turns(session).await?))
    }

    /// The session's history and its compaction summary, in one read of the store.
    async fn context(
        &self,
        session: crate::store::SessionId,
    ) -> Result<(Vec<Message>, Option<String>), AgentError> {
        let (turns, summary) = self.store.session_context(session).await?;
        Ok((messages(turns), summary))
    }

    /// The skills agent `agent` can load now (read from disk on every turn, so a skill dropped
    /// into a folder is there for the next message). A malformed `SKILL.md` is skipped with one
    /// warning naming the file, not one per turn.
    pub fn skills(&self, agent: &str) -> Vec<Skill> {
        use crate::watched::Generation;
        let now = Generation::now();
        if let Some(now) = now
            && let Some((seen, skills)) = self.skills_seen.lock().get(agent)
            && *seen == now
        {
            return skills.clone();
        }
        let roots = self.config.skill_roots(agent);
        let watched = crate::tools::skills::watch(&roots);
        let (skills, skipped) = crate::tools::skills::discover(&roots);
        if let (Some(now), true) = (now, watched) {
            self.skills_seen
                .lock()
                .insert(agent.to_string(), (now, skills.clone()));
        }
        if !skipped.is_empty() {
            let mut warned = self.warned_skills.lock();
            for s in skipped {
                let key = format!("{}\0{}", s.file.display(), s.reason);
                if warned.insert(key) {
                    tracing::warn!(file = %s.file.display(), reason = %s.reason, "skipping a malformed skill");
                }
            }
        }
        skills
    }

    /// Reads what every agent's turns read from disk (workspace files, skills), so that the
    /// first message finds it in memory and watched (see `crate::watched`). Start-up calls it
    /// once the gateway is ready.
    pub fn warm(&self) {
        for (name, ws) in &self.workspaces {
            let _ = ws.prompt_files();
            let _ = self.skills(name);
        }
    }

    /// IDENTITY.md + MEMORY.md + yesterday's and today's notes + skills + the session summary +
    /// context.
    pub(crate) fn system_prompt(
        &self,
        ws: &Workspace,
        ctx: &TurnContext,
        skills: &[Skill],
        summary: Option<&str>,
    ) -> String {
        let files = ws.prompt_files();
        let mut p = files.identity.to_string();
        // Within the budget: MEMORY.md first (from its top), then today's and yesterday's notes
        // (their latest lines). What does not fit is named, never silently dropped.
        let mut left = self
            .config
            .memory
            .prompt_chars
            .saturating_sub(p.chars().count());
        let mut sections = vec![("MEMORY.md".to_string(), files.memory, false)];
        for (label, (day, text)) in [
            ("Today's notes", files.today),
            ("Yesterday's notes", files.yesterday),
        ] {
            sections.push((format!("{label} ({day})"), text, true));
        }
        let mut omitted = Vec::new();
        let mut parts = Vec::new();
        for (title, text, keep_tail) in sections {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let (kept, dropped) = fit(text, left, keep_tail);
            left -= kept.chars().count().min(left);
            if dropped > 0 {
                omitted.push(format!("{dropped} characters of {title}"));
            }
            if !kept.is_empty() {
                parts.push((title, kept));
            }
        }
        // Read order: memory, yesterday, today.
        parts.sort_by_key(|(t, _)| match t.as_str() {
            "MEMORY.md" => 0,
            t if t.starts_with("Yesterday") => 1,
            _ => 2,
        });
        for (title, kept) in parts {
            p.push_str(&format!("\n\n## {title}\n\n{kept}"));
        }
        if !omitted.is_empty() {
            p.push_str(&format!(
                "\n\n(Left out to fit the prompt: {}. Use search_memory to find them.)",
                omitted.join(", ")
            ));
        }
        if let Some(section) = crate::tools::skills::prompt_section(skills) {
            p.push_str("\n\n");
            p.push_str(&section);
        }
        if let Some(summary) = summary.filter(|s| !s.trim().is_empty()) {
            p.push_str("\n\n## Summary of this conversation so far\n\n");
            p.push_str(summary);
        }
        let now = ws.local(chrono::Utc::now());
        p.push_str(&format!(
            "\n\n## Context\n\nNow: {}. You are `{}`.",
            now.format("%A %Y-%m-%d %H:%M %Z"),
            ctx.agent
        ));
        if let Some(o) = &ctx.origin {
            p.push_str(&format!(" This chat: {o}."));
        }
        p.push_str("\n\n");
        p.push_str(crate::tools::UNTRUSTED_NOTE);
        if ctx.is_worker {
            p.push_str("\n\nYou are running a background task: do it fully, then reply with the result; it is posted to the chat that asked.");
        }
        p
    }
}

/// What a model call is for, as the usage ledger records it: `purpose` overrides the turn's own
/// (a chat answer, a worker's task, a scheduled run).
pub(crate) fn meter_call(
    ctx: &TurnContext,
    purpose: Option<&'static str>,
) -> crate::providers::Call {
    let purpose = purpose.unwrap_or(ctx.purpose);
    crate::providers::Call {
        agent: ctx.agent.clone(),
        chat: ctx.origin.clone(),
        session: Some(ctx.session),
        task: ctx.task,
        purpose,
    }
}

/// A session's stored turns as model messages; an unreadable turn is skipped with a warning.
fn messages(rows: Vec<crate::store::TurnRow>) -> Vec<Message> {
    let mut out = Vec::new();
    for t in rows {
        let role = if t.role == "assistant" {
            Role::Assistant
        } else {
            Role::User
        };
        match serde_json::from_str::<Vec<Block>>(&t.content) {
            Ok(content) => out.push(Message { role, content }),
            Err(e) => tracing::warn!(turn = t.id, error = %e, "skipping unreadable turn"),
        }
    }
    // A history must not start with tool results whose call is gone.
    while out.first().is_some_and(|m| {
        m.content
            .iter()
            .any(|b| matches!(b, Block::ToolResult { .. }))
    }) {
        out.remove(0);
    }
    out
}
