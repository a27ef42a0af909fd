//! Compaction: when a session's context passes `compaction.threshold` tokens, older turns are
//! replaced by a model-written summary.
//!
//! First a silent memory-flush turn lets the agent save what it must keep (with its tools); then
//! the model summarizes the older turns (keeping names, numbers, ids, decisions and open tasks).
//! The most recent turns stay verbatim, and the cut never separates a tool call from its result.
//! Nothing is deleted: compacted turns stay in the database, marked. The summary becomes part of
//! the session's prompt and is appended to the agent's daily note.

use super::{AgentError, Agents, ToolHost, TurnContext};
use crate::providers::{Block, Message, Request, Role};

/// Turns kept verbatim after compaction (at least).
const KEEP_RECENT: usize = 6;
const FLUSH_STEPS: usize = 4;

const FLUSH_PROMPT: &str = "[system] This conversation is about to be compacted: older messages will be replaced by a summary. \
If anything in it must be kept for later (facts, names, numbers, ids, decisions, open tasks), save it now with the remember tool. \
Then reply DONE.";

impl Agents {
    /// Compacts `ctx.session` if it has enough turns; returns the summary written, if any.
    pub async fn compact(
        &self,
        ctx: &TurnContext,
        host: &dyn ToolHost,
    ) -> Result<Option<String>, AgentError> {
        let turns = self.store.turns(ctx.session).await?;
        if turns.len() <= KEEP_RECENT + 1 {
            return Ok(None);
        }
        // Cut so that the first kept turn is a user message that is not a tool result.
        let mut cut = turns.len() - KEEP_RECENT;
        while cut > 0 {
            let t = &turns[cut];
            if t.role == "user" && !t.content.contains("\"tool_result\"") {
                break;
            }
            cut -= 1;
        }
        if cut == 0 {
            return Ok(None);
        }
        let ws = self
            .workspaces
            .get(&ctx.agent)
            .ok_or_else(|| AgentError::UnknownAgent(ctx.agent.clone()))?;
        let role = self.role_for(ctx);
        let previous = self
            .store
            .session_summary(ctx.session)
            .await?
            .unwrap_or_default();
        let system = self.system_prompt(ws, ctx, &[], Some(&previous));

        // 1. The memory flush: a silent turn with tools; its messages are not kept.
        let mut messages = std::sync::Arc::new(self.history(ctx.session).await?);
        std::sync::Arc::make_mut(&mut messages).push(Message::user(FLUSH_PROMPT));
        let specs = std::sync::Arc::new(crate::tools::builtin::specs(true));
        for _ in 0..FLUSH_STEPS {
            let req = Request {
                model: String::new(),
                system: system.clone(),
                messages: messages.clone(),
                tools: specs.clone(),
                max_tokens: 1024,
            };
            let (resp, _) = self
                .models
                .complete(&role, req, &super::meter_call(ctx, Some("compaction")))
                .await?;
            let calls: Vec<(String, String, serde_json::Value)> = resp
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            std::sync::Arc::make_mut(&mut messages).push(Message {
                role: Role::Assistant,
                content: resp.content,
            });
            if calls.is_empty() {
                break;
            }
            let mut results = Vec::new();
            for (id, name, input) in calls {
                let out = self.tools.run(&name, &input, &[], ctx, host).await;
                results.push(Block::ToolResult {
                    tool_use_id: id,
                    content: out.text,
                    is_error: out.is_error,
                    images: out.images,
                });
            }
            std::sync::Arc::make_mut(&mut messages).push(Message {
                role: Role::User,
                content: results,
            });
        }

        // 2. The summary of the older turns (and of the previous summary).
        let mut transcript = String::new();
        if !previous.trim().is_empty() {
            transcript.push_str(&format!("Earlier summary:\n{previous}\n\nThen:\n"));
        }
        for t in &turns[..cut] {
            transcript.push_str(&render_turn(&t.role, &t.content));
        }
        let req = Request {
            model: String::new(),
            system: "You write the summary of a conversation for the assistant who had it, so it can continue without the full text. \
                     Keep every name, number, id, date, decision and open task. Plain text, at most 300 words."
                .into(),
            messages: std::sync::Arc::new(vec![Message::user(format!(
                "Summarize this conversation:\n\n{transcript}"
            ))]),
            tools: Default::default(),
            max_tokens: 1024,
        };
        let (resp, _) = self
            .models
            .complete(&role, req, &super::meter_call(ctx, Some("compaction")))
            .await?;
        let summary = Message {
            role: Role::Assistant,
            content: resp.content,
        }
        .text();
        if summary.trim().is_empty() {
            return Ok(None);
        }
        self.store
            .session_compact(ctx.session, turns[cut - 1].id, summary.trim())
            .await?;
        if let Err(e) = ws.note_today(&format!(
            "Compaction summary (conversation {}): {}",
            ctx.session,
            summary.trim()
        )) {
            tracing::warn!(error = %e, "cannot write the daily note");
        }
        tracing::info!(session = ctx.session, compacted = cut, "session compacted");
        Ok(Some(summary))
    }
}

/// A stored turn as plain text for the summarizer.
fn render_turn(role: &str, content: &str) -> String {
    let blocks: Vec<Block> = serde_json::from_str(content).unwrap_or_default();
    let mut out = String::new();
    for b in blocks {
        let line = match b {
            Block::Text { text } => format!("{role}: {text}"),
            Block::ToolUse { name, input, .. } => format!("{role} called {name} with {input}"),
            Block::ToolResult { content, .. } => {
                let short: String = content.chars().take(500).collect();
                format!("tool result: {short}")
            }
            Block::ImageFile { path, .. } => format!("{role} sent an image ({path})"),
            Block::DocumentFile { name, path, .. } => format!("{role} sent {name} ({path})"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
