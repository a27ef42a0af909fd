//! Chat commands: `/help`, `/new`, `/status`, `/task`, `/tasks`, `/cancel`, `/agent`, `/stop`, ….

use super::Coordinator;
use crate::store::main_key;
use switchboard_channel::Inbound;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    New,
    Status,
    Task(String),
    Tasks,
    Cancel(String),
    Agent(String),
    Cron,
    Usage,
    Compact,
    Model(String),
    /// Abort the turn in progress (handled beside the chat's queue, not in it).
    Stop,
    Unknown(String),
}

/// `/help`: the same list the platforms' command menus show.
pub fn help() -> String {
    let mut out = String::from("Commands:");
    for c in switchboard_channel::COMMANDS {
        out.push_str(&format!("\n/{}", c.name));
        if let Some(arg) = c.arg {
            out.push_str(&format!(" {arg}"));
        }
        out.push_str(&format!(" — {}", c.description));
    }
    out
}

/// A command, if the message is one. `/cmd@BotName` (Telegram groups) is accepted.
pub fn parse(text: &str) -> Option<Command> {
    let t = text.trim();
    let rest = t.strip_prefix('/')?;
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let name = head.split('@').next().unwrap_or(head).to_lowercase();
    if name.is_empty() {
        return None;
    }
    Some(match name.as_str() {
        "help" | "start" => Command::Help,
        "new" | "reset" => Command::New,
        "status" => Command::Status,
        "task" => Command::Task(args.to_string()),
        "tasks" => Command::Tasks,
        "cancel" => Command::Cancel(args.to_string()),
        "agent" => Command::Agent(args.to_string()),
        "cron" => Command::Cron,
        "usage" => Command::Usage,
        "compact" => Command::Compact,
        "model" => Command::Model(args.to_string()),
        "stop" => Command::Stop,
        _ => Command::Unknown(name),
    })
}

pub async fn run(c: &Coordinator, m: &Inbound, cmd: Command) -> Option<String> {
    let target = m.chat.to_string();
    let thread = m.thread.as_deref();
    Some(match cmd {
        Command::Help => help(),
        Command::New => {
            let agent = c.agent_for(m).await;
            match c
                .store()
                .sessions_end(&main_key(&agent, &target, thread))
                .await
            {
                Ok(_) => format!("Started a fresh conversation with {agent}."),
                Err(e) => format!("⚠️ Could not reset the session: {e}"),
            }
        }
        Command::Status => status(c, m).await,
        Command::Task(args) => {
            let (agent, text) = match split_agent(c, &args) {
                Some(split) => split,
                None => (c.agent_for(m).await, args.clone()),
            };
            if text.trim().is_empty() {
                return Some("Usage: /task [AGENT] TEXT".into());
            }
            let requester = c
                .store()
                .session_open(
                    &main_key(&c.agent_for(m).await, &target, thread),
                    crate::store::SessionKind::Main,
                    &c.agent_for(m).await,
                    Some(&target),
                    thread,
                )
                .await
                .ok();
            match c
                .start_task(&agent, &text, &target, thread, requester)
                .await
            {
                Ok(id) => format!("Task #{id} started with {agent}. I'll post the result here."),
                Err(e) => format!("⚠️ {e}"),
            }
        }
        Command::Tasks => c
            .describe_tasks(Some(&target))
            .await
            .unwrap_or_else(|e| format!("⚠️ {e}")),
        Command::Cancel(args) => match args.trim_start_matches('#').parse::<i64>() {
            Ok(id) => c
                .cancel_task(id)
                .await
                .unwrap_or_else(|e| format!("⚠️ {e}")),
            Err(_) => "Usage: /cancel ID (see /tasks)".into(),
        },
        Command::Agent(name) => {
            let name = name.trim().to_lowercase();
            let names = c.agents().names().join(", ");
            if name.is_empty() {
                format!(
                    "This chat talks to {}. Agents: {names}.",
                    c.agent_for(m).await
                )
            } else if !c.agents().exists(&name) {
                format!("No agent named `{name}`. Agents: {names}.")
            } else {
                match c.store().set_chat_agent(&target, &name).await {
                    Ok(()) => format!("This chat now talks to {name}."),
                    Err(e) => format!("⚠️ {e}"),
                }
            }
        }
        Command::Compact => c.compact_chat(m).await,
        Command::Model(arg) => {
            let arg = arg.trim();
            let roles = c
                .config()
                .models
                .roles
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if arg.is_empty() {
                let current = c
                    .chat_model(m)
                    .await
                    .unwrap_or_else(|| "the agent's own".into());
                format!("This chat uses {current} model. Roles: {roles}.")
            } else if arg == "reset" {
                match c.store().set_chat_model(&target, None).await {
                    Ok(()) => "This chat is back on the agent's own model.".into(),
                    Err(e) => format!("⚠️ {e}"),
                }
            } else if !c.agents().model_exists(arg) {
                format!("No model `{arg}`. Use a role ({roles}) or provider/model.")
            } else {
                match c.store().set_chat_model(&target, Some(arg)).await {
                    Ok(()) => format!(
                        "This chat now uses {arg} ({}).",
                        c.agents().resolve_model(arg)
                    ),
                    Err(e) => format!("⚠️ {e}"),
                }
            }
        }
        Command::Usage => {
            crate::usage::report::for_chat(
                c.store(),
                c.ledger(),
                &target,
                c.clock().now(),
                c.config().tz(),
            )
            .await
        }
        Command::Cron => match c.store().cron_jobs(Some(&target)).await {
            Ok(jobs) => crate::cron::describe(&jobs, c.config().tz()),
            Err(e) => format!("⚠️ {e}"),
        },
        Command::Stop => c.stop_turn(m),
        Command::Unknown(name) => format!("Unknown command /{name}. Try /help."),
    })
}

/// `/task clu fix the build` → ("clu", "fix the build") when the first word is an agent.
fn split_agent(c: &Coordinator, args: &str) -> Option<(String, String)> {
    let (first, rest) = args.split_once(char::is_whitespace)?;
    let first = first.to_lowercase();
    c.agents()
        .exists(&first)
        .then(|| (first, rest.trim().to_string()))
}

async fn status(c: &Coordinator, m: &Inbound) -> String {
    let agent = c.agent_for(m).await;
    let target = m.chat.to_string();
    let key = main_key(&agent, &target, m.thread.as_deref());
    let turns = c
        .store()
        .sessions_live()
        .await
        .ok()
        .and_then(|s| s.into_iter().find(|s| s.key == key))
        .map_or(0, |s| s.turns);
    let tasks = c
        .store()
        .tasks_recent(Some(&target))
        .await
        .map(|t| t.iter().filter(|t| t.status.is_active()).count())
        .unwrap_or(0);
    let up = c.uptime().as_secs();
    let model = match c.chat_model(m).await {
        Some(r) => c.agents().resolve_model(&r),
        None => c.agents().model_of(&agent),
    };
    format!(
        "Agent: {agent}\nModel: {model}\nSession: {turns} turns\nActive tasks here: {tasks}\nUptime: {}h {}m",
        up / 3600,
        (up % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("/help"), Some(Command::Help));
        assert_eq!(parse("/new@JarvisBot"), Some(Command::New));
        assert_eq!(
            parse("/task clu  fix it "),
            Some(Command::Task("clu  fix it".into()))
        );
        assert_eq!(parse("/cancel 3"), Some(Command::Cancel("3".into())));
        assert_eq!(parse("/frob"), Some(Command::Unknown("frob".into())));
        assert_eq!(parse("hello /new"), None);
        assert_eq!(parse("/"), None);
    }
}
