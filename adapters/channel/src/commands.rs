//! The chat commands, as platforms list them (Telegram's command menu, Discord's slash commands).
//! The core parses and runs them; this list is the one both menus are built from, so they stay in
//! step with each other and with `/help`.

/// One chat command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// What its argument is, for commands that take one (Discord shows it as an option).
    pub arg: Option<&'static str>,
}

const fn cmd(
    name: &'static str,
    description: &'static str,
    arg: Option<&'static str>,
) -> CommandInfo {
    CommandInfo {
        name,
        description,
        arg,
    }
}

pub const COMMANDS: &[CommandInfo] = &[
    cmd("help", "What I can do", None),
    cmd("new", "Start a fresh conversation", None),
    cmd("status", "Agent, model, session and tasks", None),
    cmd("task", "Run a background task", Some("[agent] what to do")),
    cmd("tasks", "This chat's tasks", None),
    cmd("cancel", "Cancel a task", Some("task id")),
    cmd("stop", "Stop the answer in progress", None),
    cmd("agent", "Switch this chat's agent", Some("agent name")),
    cmd(
        "model",
        "Use another model here",
        Some("role or provider/model; reset to undo"),
    ),
    cmd(
        "compact",
        "Summarize older messages of this conversation now",
        None,
    ),
    cmd("cron", "This chat's scheduled jobs", None),
    cmd(
        "usage",
        "Tokens and cost: this chat today and this month",
        None,
    ),
];
