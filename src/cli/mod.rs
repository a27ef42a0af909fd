//! The command line (clap). This is the binary's edge: errors become messages and exit codes
//! (0 success, 1 runtime failure, 2 usage or config error).

mod approvals;
mod chat;
mod doctor;
mod gateway;
mod logs;
mod mcp;
mod models;
mod print;
mod reset;
mod skills;
mod usage;

use crate::config::{self, Config, ConfigError};
use crate::gateway::client::Client;
use clap::{Parser, Subcommand};
use models::models;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A fleet of LLM agents on Telegram and Discord, 24/7"
)]
struct Cli {
    /// Config file (default: $SWITCHBOARD_CONFIG, else ~/.switchboard/config.json5).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in the foreground (Ctrl-C / SIGTERM: graceful); `gateway status` asks a running one.
    Gateway {
        #[command(subcommand)]
        sub: Option<GatewaySub>,
    },
    /// Talk to an agent from the terminal (piped stdin: one message per line).
    Chat {
        #[arg(long)]
        agent: Option<String>,
        /// The local chat's name (its own session).
        #[arg(long, default_value = "terminal")]
        chat: String,
    },
    /// Post a message through a channel: telegram:CHAT_ID, discord:channel:ID, discord:dm:USER_ID, local:NAME.
    Send {
        #[arg(long)]
        to: String,
        /// A file to post (TEXT becomes its caption).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        #[arg(required_unless_present = "file", trailing_var_arg = true)]
        text: Vec<String>,
    },
    /// Read, change and check the config file.
    Config {
        #[command(subcommand)]
        sub: ConfigSub,
    },
    /// Conversations.
    Sessions {
        #[command(subcommand)]
        sub: SessionsSub,
    },
    /// Scheduled agent runs posted to a chat (work with the gateway down, except `run`).
    Cron {
        #[command(subcommand)]
        sub: CronSub,
    },
    /// Who may talk to the agents: pending pairing codes and approved senders (works with the gateway down).
    Pairing {
        #[command(subcommand)]
        sub: PairingSub,
    },
    /// Set a provider's credentials: an API key (prompted on stdin, never an argument) or OAuth
    /// tokens imported from a JSON file. `auth status` shows each provider's state.
    Auth {
        /// A provider name from the config, or `status`.
        provider: String,
        /// JSON with access_token, refresh_token, expires_at (ms or RFC 3339), token_url, client_id.
        #[arg(long, value_name = "FILE")]
        oauth: Option<PathBuf>,
    },
    /// Local speech-to-text of an audio file (Ogg/Opus voice notes, WAV).
    Transcribe {
        file: PathBuf,
        /// A whisper ggml model (default: `voice.model` from the config).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Print the transcript with timed segments as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whisper speech models in the state dir's `models/`: download one, list what is installed.
    Models {
        #[command(subcommand)]
        sub: ModelsSub,
    },
    /// Diagnose config, state, gateway reachability and bind, tokens, models and the scheduler.
    Doctor {
        /// Remove cron jobs, chat choices and sessions that point at agents, channels or models
        /// the config no longer has (after a backup).
        #[arg(long)]
        fix: bool,
        /// Also call each service once: Telegram getMe, Discord users/@me, each provider's models.
        #[arg(long)]
        online: bool,
    },
    /// Start over after a backup of config, memory files and the database (in `<stateDir>/backups/`):
    /// end all sessions, remove all cron jobs, or everything (the gateway must be stopped for --all).
    Reset {
        #[arg(long)]
        sessions: bool,
        #[arg(long)]
        crons: bool,
        #[arg(long)]
        all: bool,
    },
    /// Copy the config, every workspace and a consistent snapshot of the database into
    /// `<stateDir>/backups/<time>/` (safe while the gateway runs); `list`; `restore PATH`.
    Backup {
        #[command(subcommand)]
        sub: Option<BackupSub>,
    },
    /// Read the gateway's log files (works with the gateway down).
    Logs {
        /// Keep printing new lines as they are written.
        #[arg(short, long)]
        follow: bool,
        /// Only lines at this level or more severe: error, warn, info, debug, trace.
        #[arg(long)]
        level: Option<String>,
        /// Only lines since: 10m, 2h, 3d (ago), HH:MM (today), YYYY-MM-DD, "YYYY-MM-DD HH:MM".
        #[arg(long)]
        since: Option<String>,
        /// Only lines containing this text (e.g. `chat=telegram:42`, a session or task id).
        #[arg(long)]
        grep: Option<String>,
        /// Each line as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Bring config, memory files, skills and cron jobs over from another system.
    Import {
        #[command(subcommand)]
        sub: ImportSub,
    },
    /// Background tasks.
    Tasks {
        #[command(subcommand)]
        sub: TasksSub,
    },
    /// Requests to run tools listed in `tools.approve`: list, approve or deny them.
    Approvals {
        #[command(subcommand)]
        sub: ApprovalsSub,
    },
    /// MCP servers: their state, tools and last error (from the gateway, or started once).
    Mcp {
        #[command(subcommand)]
        sub: McpSub,
    },
    /// Tokens and cost of model calls (works with the gateway down).
    Usage {
        /// `today` (default), `month`, a number of days (`7d`) or a date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Group by agent, chat or model.
        #[arg(long, default_value = "model")]
        by: String,
        #[arg(long)]
        json: bool,
    },
    /// Shell completions on stdout: `switchboard completions bash > ~/.local/share/bash-completion/completions/switchboard`.
    Completions { shell: clap_complete::Shell },
    /// The manual page (roff) on stdout: `switchboard man | man -l -`.
    Man,
    /// The heartbeat's schedule and its latest runs (works with the gateway down).
    Heartbeat {
        #[arg(long)]
        json: bool,
    },
    /// Skills (folders with a SKILL.md) each agent can load; malformed ones with the reason.
    Skills {
        #[command(subcommand)]
        sub: SkillsSub,
    },
}

#[derive(Subcommand)]
enum ApprovalsSub {
    /// Pending requests (with `--all`, the latest of every state).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Let the tool run (`--session`: and run unasked for the rest of that session).
    Approve {
        id: i64,
        #[arg(long)]
        session: bool,
    },
    Deny {
        id: i64,
    },
}

#[derive(Subcommand)]
enum McpSub {
    /// Every configured server with its state and tools.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start (or ask the running gateway for) one server and list its tools.
    Test {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SkillsSub {
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum GatewaySub {
    /// Is it up, where is it listening, channels, tasks, uptime.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Write and enable a systemd user service (restarts on failure); `--print` shows the unit.
    Install {
        #[arg(long)]
        print: bool,
    },
    /// Stop, disable and remove the systemd user service.
    Uninstall,
    /// Start the service (or, without one, the gateway in the background).
    Start,
    /// Stop the gateway gracefully (the service, or one started by hand).
    Stop,
    /// Stop, then start.
    Restart,
}

#[derive(Subcommand)]
enum ImportSub {
    /// An OpenClaw (clawdbot, moltbot) state dir: DIR, else ~/.openclaw, ~/.clawdbot,
    /// ~/.moltbot or ~/clawd. Shows the plan; `--apply` carries it out after a backup.
    Openclaw {
        dir: Option<PathBuf>,
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand)]
enum BackupSub {
    /// Every backup in `<stateDir>/backups/`, with its size and reason.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Put a backup back (the gateway must be stopped); the state it replaces is backed up first.
    Restore { path: PathBuf },
}

#[derive(Subcommand)]
enum ConfigSub {
    /// Print a value (secrets as ***); no key prints everything.
    Get { key: Option<String> },
    /// Set a value, keeping the file's comments and layout; refused if it makes the config invalid.
    Set { key: String, value: String },
    /// Check the config and say what is wrong, with file:line:column.
    Validate,
    /// Print the config file's path.
    Path,
}

#[derive(Subcommand)]
enum SessionsSub {
    List {
        #[arg(long)]
        json: bool,
    },
    /// End main sessions (all, or those whose key starts with KEY) so chats start fresh.
    Reset { key: Option<String> },
}

#[derive(Subcommand)]
enum CronSub {
    /// Add a job: SCHEDULE is 5-field cron ("0 9 * * 1-5") or @hourly/@daily/@weekly.
    Add {
        schedule: String,
        message: String,
        /// Where the reply goes: telegram:ID, discord:channel:ID, discord:dm:ID, local:NAME.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        /// IANA time zone (default: the config's `timezone`, else the system's).
        #[arg(long)]
        tz: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Rm {
        id: i64,
    },
    /// Remove every job.
    Clear,
    /// Run a job now (needs the running gateway).
    Run {
        id: i64,
    },
    Enable {
        id: i64,
    },
    Disable {
        id: i64,
    },
}

#[derive(Subcommand)]
enum PairingSub {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve the sender who was given CODE on CHANNEL (telegram, discord).
    Approve { channel: String, code: String },
    /// Withdraw USER's access on CHANNEL.
    Revoke { channel: String, user: String },
}

#[derive(Subcommand)]
enum ModelsSub {
    /// Fetch a ggml model (tiny.en, tiny, base.en, base, small.en, small), check its SHA-256 and
    /// install it; an interrupted download resumes where it stopped.
    Download {
        name: String,
        /// Where the ggml files are served (default: the whisper.cpp project's model host).
        #[arg(long, env = "SWITCHBOARD_MODELS_URL", value_name = "URL")]
        base_url: Option<String>,
        /// Check against this SHA-256 instead of the pinned one (a mirror of your own conversion).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
    },
    /// What is installed (and which file `voice.model` points at).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TasksSub {
    List {
        #[arg(long)]
        json: bool,
    },
    Cancel {
        id: i64,
    },
}

/// A request the command line cannot carry out as given (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_gateway = matches!(cli.command, Command::Gateway { sub: None });
    // Here the config gives logging its level, format and the secrets to mask. The gateway
    // keeps it (reading it again cost every start ~0.5 ms); other commands read it again and
    // report its errors themselves.
    let config = Config::load(&config::resolve_path(cli.config.as_deref())).ok();
    let _logging = crate::logging::init(config.as_ref(), is_gateway);
    let loaded = if is_gateway { config } else { None };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let config_problem = e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<UsageError>().is_some()
                || matches!(
                    e.downcast_ref::<crate::gateway::GatewayError>(),
                    Some(crate::gateway::GatewayError::InsecureBind { .. })
                );
            let code = if config_problem { 2 } else { 1 };
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// `loaded`: the config as `main` already read it, if it did.
async fn run(cli: Cli, loaded: Option<Config>) -> anyhow::Result<()> {
    let path = config::resolve_path(cli.config.as_deref());
    let load = || Config::load(&path);
    match cli.command {
        Command::Gateway { sub: None } => {
            let config = match loaded {
                Some(c) => c,
                None => load()?,
            };
            crate::gateway::run(config).await?
        }
        Command::Gateway {
            sub: Some(GatewaySub::Status { json }),
        } => {
            let c = load()?;
            let client = Client::from_config(&c);
            let s = client.status().await?;
            print::status(&s, client.url(), json)?;
        }
        Command::Gateway { sub: Some(sub) } => {
            let c = load()?;
            match sub {
                GatewaySub::Status { .. } => unreachable!("handled above"),
                GatewaySub::Install { print } => gateway::install(&c, &path, print).await?,
                GatewaySub::Uninstall => gateway::uninstall().await?,
                GatewaySub::Start => gateway::start(&c, &path).await?,
                GatewaySub::Stop => gateway::stop(&c).await?,
                GatewaySub::Restart => gateway::restart(&c, &path).await?,
            }
        }
        Command::Logs {
            follow,
            level,
            since,
            grep,
            json,
        } => logs::logs(&load()?, follow, level, since, grep, json)?,
        Command::Import {
            sub: ImportSub::Openclaw { dir, apply },
        } => import_openclaw(&path, dir.as_deref(), apply).await?,
        Command::Backup { sub } => backup(&load()?, &path, sub).await?,
        Command::Chat { agent, chat } => chat::run(&load()?, &chat, agent).await?,
        Command::Send { to, file, text } => {
            let c = load()?;
            let file = match file {
                Some(f) => Some(
                    f.canonicalize()
                        .map_err(|e| UsageError(format!("cannot read {}: {e}", f.display())))?
                        .display()
                        .to_string(),
                ),
                None => None,
            };
            let done = Client::from_config(&c)
                .send(&to, &text.join(" "), file.as_deref())
                .await?;
            println!("{}", done.message);
        }
        Command::Config { sub } => match sub {
            ConfigSub::Path => println!("{}", path.display()),
            ConfigSub::Validate => {
                let c = load()?;
                println!(
                    "{}: ok ({} agents, coordinator {}, {} providers)",
                    path.display(),
                    c.agents.len(),
                    c.coordinator(),
                    c.providers.len()
                );
            }
            ConfigSub::Get { key } => {
                let v = config::get(&load()?, key.as_deref().unwrap_or(""))?;
                match v {
                    serde_json::Value::String(s) => println!("{s}"),
                    other => println!("{}", serde_json::to_string_pretty(&other)?),
                }
            }
            ConfigSub::Set { key, value } => {
                config::set(&path, &key, &value)?;
                println!("set {key} in {}", path.display());
            }
        },
        Command::Sessions { sub } => {
            let client = Client::from_config(&load()?);
            match sub {
                SessionsSub::List { json } => print::sessions(&client.sessions().await?, json)?,
                SessionsSub::Reset { key } => {
                    println!("{}", client.reset_sessions(key).await?.message)
                }
            }
        }
        Command::Cron { sub } => cron(&load()?, sub).await?,
        Command::Auth { provider, oauth } => auth(&load()?, &provider, oauth.as_deref())?,
        Command::Transcribe { file, model, json } => {
            let (model, language, threads) = match (&model, Config::load(&path)) {
                (Some(m), Ok(c)) => (m.clone(), c.voice.language, c.voice.threads),
                (Some(m), Err(_)) => (m.clone(), "en".to_string(), 2),
                (None, Ok(c)) => (c.voice_model().0, c.voice.language, c.voice.threads),
                (None, Err(e)) => return Err(e.into()),
            };
            let bytes = std::fs::read(&file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            let samples = crate::voice::decode::decode(&bytes)?;
            let t = crate::voice::Transcriber::new(&model, &language, threads);
            let transcript =
                tokio::task::spawn_blocking(move || t.transcribe_blocking(&samples)).await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&transcript)?);
            } else {
                println!("{}", transcript.text);
            }
        }
        Command::Models { sub } => models(&load()?, sub).await?,
        Command::Usage { since, by, json } => {
            usage::usage(&load()?, since.as_deref(), &by, json).await?
        }
        Command::Heartbeat { json } => usage::heartbeat(&load()?, json).await?,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "switchboard",
                &mut std::io::stdout(),
            );
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
        }
        Command::Skills {
            sub: SkillsSub::List { json },
        } => skills::list(&load()?, json)?,
        Command::Approvals { sub } => match sub {
            ApprovalsSub::List { all, json } => approvals::list(&load()?, all, json).await?,
            ApprovalsSub::Approve { id, session } => {
                let answer = if session {
                    "approve-session"
                } else {
                    "approve"
                };
                approvals::answer(&load()?, id, answer).await?
            }
            ApprovalsSub::Deny { id } => approvals::answer(&load()?, id, "deny").await?,
        },
        Command::Mcp { sub } => match sub {
            McpSub::List { json } => mcp::list(&load()?, json).await?,
            McpSub::Test { name, json } => mcp::test(&load()?, &name, json).await?,
        },
        Command::Reset {
            sessions,
            crons,
            all,
        } => {
            let what = reset::What {
                sessions,
                crons,
                all,
            };
            reset::reset(&load()?, &path, what).await?
        }
        Command::Doctor { fix, online } => {
            let problems = doctor::run(&path, fix, online).await?;
            if problems > 0 {
                anyhow::bail!("doctor found {problems} problem(s)");
            }
        }
        Command::Pairing { sub } => {
            let c = load()?;
            let store = crate::store::Store::for_config(&c)?;
            match sub {
                PairingSub::List { json } => {
                    let (pending, allowed) = store.pairing_list().await?;
                    print::pairing(&pending, &allowed, json)?;
                }
                PairingSub::Approve { channel, code } => {
                    match store.pairing_approve(&channel, &code).await? {
                        Some(a) => println!(
                            "approved {channel} user {}{}; they can talk to the agents now",
                            a.sender,
                            a.name.map(|n| format!(" ({n})")).unwrap_or_default()
                        ),
                        None => anyhow::bail!(
                            "no live pairing code {code} on {channel} (codes expire after an hour; see `switchboard pairing list`)"
                        ),
                    }
                }
                PairingSub::Revoke { channel, user } => {
                    if store.pairing_revoke(&channel, &user).await? {
                        println!("revoked {channel} user {user}");
                    } else {
                        anyhow::bail!("{channel} user {user} was not approved");
                    }
                }
            }
        }
        Command::Tasks { sub } => {
            let client = Client::from_config(&load()?);
            match sub {
                TasksSub::List { json } => print::tasks(&client.tasks().await?, json)?,
                TasksSub::Cancel { id } => println!("{}", client.cancel_task(id).await?.message),
            }
        }
    }
    Ok(())
}

async fn import_openclaw(
    path: &std::path::Path,
    dir: Option<&std::path::Path>,
    apply: bool,
) -> anyhow::Result<()> {
    use crate::import::openclaw;
    let ours = Config::load(path).ok();
    if ours.is_none() && path.exists() {
        // An existing config that does not load: say why rather than write over it.
        Config::load(path)?;
    }
    let from = openclaw::locate(dir).map_err(|e| UsageError(e.to_string()))?;
    let plan = openclaw::plan(&from, ours.as_ref())?;
    print!("{}", crate::import::describe(&plan));
    if !apply {
        println!(
            "\nnothing was changed; run again with --apply to bring this over into {}",
            path.display()
        );
        return Ok(());
    }
    let now = crate::cron::clock::from_env().now();
    let done = crate::import::apply(&plan, path, now).await?;
    println!();
    if let Some(b) = &done.backup {
        println!("backed up the current state to {}", b.display());
    }
    println!(
        "applied: {} config key(s) in {}, {} file(s), {} cron job(s)",
        done.config_keys,
        path.display(),
        done.files,
        done.crons
    );
    for c in &done.conflicts {
        println!(
            "kept beside yours (yours held something else): {}",
            c.display()
        );
    }
    if let Ok(c) = Config::load(path)
        && gateway::running(&c).await.is_some()
    {
        println!(
            "a gateway is running: restart it to use the new agents and channels (`switchboard gateway restart`)"
        );
    }
    Ok(())
}

async fn backup(c: &Config, path: &std::path::Path, sub: Option<BackupSub>) -> anyhow::Result<()> {
    match sub {
        None => {
            let started = std::time::Instant::now();
            let dir = crate::backup::create(c, path, "backup").await?;
            let listed = crate::backup::list(c)?;
            let bytes = listed.iter().find(|b| b.path == dir).map_or(0, |b| b.bytes);
            let what = if c.store.url.trim().starts_with("postgres") {
                "config and workspaces (the PostgreSQL database is backed up with its own tools, such as pg_dump)"
            } else {
                "config, workspaces and database"
            };
            println!(
                "backed up {what} to {} ({}, {:.1} s)",
                dir.display(),
                crate::voice::models::mb(bytes),
                started.elapsed().as_secs_f64()
            );
        }
        Some(BackupSub::List { json }) => {
            let all = crate::backup::list(c)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no backups in {}", crate::backup::root(c).display());
            } else {
                for b in all {
                    let (when, why) = b
                        .manifest
                        .map(|m| (m.created, m.reason))
                        .unwrap_or_else(|| ("?".into(), "?".into()));
                    println!(
                        "{}  {:>9}  {when}  {why}",
                        b.path.display(),
                        crate::voice::models::mb(b.bytes)
                    );
                }
            }
        }
        Some(BackupSub::Restore { path: from }) => {
            if let Some(r) = gateway::running(c).await {
                anyhow::bail!(
                    "a gateway is running on this state (pid {}); stop it first (`switchboard gateway stop`), then restore",
                    r.pid.map_or("unknown".into(), |p| p.to_string())
                );
            }
            let r = crate::backup::restore(c, path, &from).await?;
            println!(
                "restored from {}: {}{}{}",
                from.display(),
                if r.database {
                    "the database"
                } else {
                    "no database"
                },
                if r.workspaces.is_empty() {
                    String::new()
                } else {
                    format!(", workspaces of {}", r.workspaces.join(", "))
                },
                r.config
                    .map(|p| format!(", the config ({})", p.display()))
                    .unwrap_or_default()
            );
            println!("what was there before is in {}", r.saved.display());
        }
    }
    Ok(())
}

async fn cron(c: &Config, sub: CronSub) -> anyhow::Result<()> {
    use crate::cron;
    let clock = cron::clock::from_env();
    if let CronSub::Run { id } = sub {
        let done = Client::from_config(c).cron_run(id).await?;
        println!("{}", done.message);
        return Ok(());
    }
    let store = crate::store::Store::for_config(c)?;
    match sub {
        CronSub::Add {
            schedule,
            message,
            to,
            agent,
            tz,
            name,
        } => {
            let spec = cron::JobSpec {
                schedule,
                message,
                target: to,
                agent,
                tz,
                name,
            };
            let job = cron::add_job(c, &store, clock.now(), spec)
                .await
                .map_err(UsageError)?;
            println!("added {}", cron::describe(&[job], c.tz()));
        }
        CronSub::List { json } => {
            let jobs = store.cron_jobs(None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                println!("{}", cron::describe(&jobs, c.tz()));
            }
            return Ok(());
        }
        CronSub::Rm { id } => {
            if !store.cron_remove(id).await? {
                anyhow::bail!("no cron job #{id}");
            }
            println!("removed cron job #{id}");
        }
        CronSub::Clear => println!("removed {} cron job(s)", store.cron_clear().await?),
        CronSub::Enable { id } | CronSub::Disable { id } => {
            let enable = matches!(sub, CronSub::Enable { .. });
            cron::set_enabled(&store, clock.now(), id, enable)
                .await
                .map_err(UsageError)?;
            println!(
                "{} cron job #{id}",
                if enable { "enabled" } else { "disabled" }
            );
        }
        CronSub::Run { .. } => unreachable!("handled above"),
    }
    // A running gateway's scheduler sleeps until its next slot; tell it the jobs changed. When
    // no gateway runs there is nobody to tell, and the change is read at start.
    let _ = Client::from_config(c).cron_changed().await;
    Ok(())
}

fn auth(c: &Config, provider: &str, oauth: Option<&std::path::Path>) -> anyhow::Result<()> {
    use crate::providers::credentials::{self, Stored};
    if provider == "status" {
        for line in credentials::status(c)? {
            println!("{line}");
        }
        return Ok(());
    }
    if !c.providers.contains_key(provider) {
        return Err(UsageError(format!(
            "no provider `{provider}` in the config (providers: {})",
            c.providers.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    let cred = match oauth {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| UsageError(format!("{} is not JSON: {e}", file.display())))?;
            let field = |k: &str| {
                v[k].as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| UsageError(format!("{} lacks `{k}`", file.display())))
            };
            let expires_at = match &v["expires_at"] {
                serde_json::Value::Number(n) => n.as_i64().unwrap_or(0),
                serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.timestamp_millis())
                    .map_err(|_| UsageError("expires_at is not a time".into()))?,
                _ => 0,
            };
            Stored::Oauth {
                access_token: field("access_token")?,
                refresh_token: field("refresh_token")?,
                expires_at,
                token_url: field("token_url")?,
                client_id: field("client_id")?,
            }
        }
        None => {
            eprint!("API key for {provider}: ");
            let mut key = String::new();
            std::io::stdin().read_line(&mut key)?;
            let key = key.trim().to_string();
            if key.is_empty() {
                return Err(UsageError("no key given".into()).into());
            }
            Stored::ApiKey { key }
        }
    };
    credentials::save(&c.state_dir(), provider, cred)?;
    println!(
        "stored credentials for {provider} in {} (mode 0600); a running gateway uses them from the next message",
        credentials::path(&c.state_dir()).display()
    );
    if c.providers
        .get(provider)
        .is_some_and(|p| p.api_key.is_some())
    {
        println!(
            "note: providers.{provider}.apiKey in the config takes precedence; remove it to use these"
        );
    }
    Ok(())
}
