//! `switchboard gateway`: assembles the store, models, agents, channels and coordinator, serves
//! the HTTP API, and shuts everything down gracefully on Ctrl-C / SIGTERM.

pub mod api;
pub mod client;

use crate::agent::Agents;
use crate::channels::Channels;
use crate::channels::local::LocalChannel;
use crate::channels::web::WebChannel;
use crate::config::Config;
use crate::coordinator::{Coordinator, Recovered};
use crate::providers::Models;
use crate::store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_channel::ChannelHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long in-flight turns get to finish at shutdown before we stop anyway (they are resumed
/// after restart).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "refusing to listen on {bind} without a gateway token: anyone who can reach this machine could drive your agents.\n\
         Set one: `switchboard config set gateway.token \"$(openssl rand -hex 24)\"` (or write \"${{SWITCHBOARD_GATEWAY_TOKEN}}\" there and export it), or use `gateway.bind: \"loopback\"`."
    )]
    InsecureBind { bind: String },
    #[error("cannot listen on {addr}: {source}{hint}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot set up agent workspaces: {0}")]
    Workspace(std::io::Error),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Channel(#[from] switchboard_telegram::TelegramError),
    #[error("{0}")]
    Discord(String),
}

/// A running gateway core (everything but the HTTP listener).
pub struct Gateway {
    pub coordinator: Coordinator,
    pub local: Arc<LocalChannel>,
    /// The control room's chats (`web:NAME`).
    pub web: Arc<WebChannel>,
    pub recovered: Recovered,
    shutdown: CancellationToken,
    /// The heartbeat scheduler's state, when one is configured.
    heartbeat: Option<(crate::heartbeat::Plan, Arc<crate::heartbeat::State>)>,
    /// Telegram's webhook (its path on our port, and where updates go), in webhook mode.
    telegram_webhook: Option<(String, Arc<switchboard_telegram::Webhook>)>,
}

impl Gateway {
    /// Opens the state and starts the coordinator, resuming whatever a previous run left.
    /// `extra` channels are added beside the configured ones (for embedding and benchmarks).
    pub async fn start(
        config: Arc<Config>,
        mut models: Models,
        extra: Vec<ChannelHandle>,
    ) -> Result<Gateway, GatewayError> {
        // Telegram first: its handshake (getMe, deleteWebhook) goes out now and overlaps opening
        // the store and resuming work.
        let shutdown = CancellationToken::new();
        // A start that fails further down stops what was started here.
        let started = shutdown.clone().drop_guard();
        // What the channels receive before the coordinator exists waits here until recovery is
        // done: stored messages still enter their chats' lanes before any new one, and nothing
        // is acknowledged before it is stored.
        let late = crate::channels::late::LateSink::new();
        let mut telegram_handle = None;
        let mut telegram_poller = None;
        let mut telegram_webhook = None;
        match config.channels.telegram.as_ref() {
            Some(t) if t.token.is_some() => {
                let settings = switchboard_telegram::TelegramSettings {
                    token: t.token.clone().unwrap_or_default(),
                    api_url: t.api_url.clone(),
                    poll_timeout: Duration::from_secs(25),
                    webhook: t
                        .webhook
                        .as_ref()
                        .map(|w| (w.url.clone(), w.secret.clone())),
                };
                let (handle, poller) =
                    switchboard_telegram::connect(settings).map_err(GatewayError::Channel)?;
                telegram_handle = Some(handle);
                telegram_webhook = poller.webhook().map(|hook| {
                    let path = t.webhook.as_ref().map(|w| w.path()).unwrap_or_default();
                    (path, hook)
                });
                let poller = Arc::new(poller);
                if telegram_webhook.is_none() && !Store::shared_by_config(&config) {
                    // On a store of its own this gateway is the one that polls: its first long
                    // poll goes out as soon as the handshake is done, into `late`, overlapping
                    // opening (or creating) the store and resuming stored work. On a shared
                    // store the polling is a role, taken further down.
                    let (p, sink) = (poller.clone(), late.clone());
                    let token = shutdown.clone();
                    tokio::spawn(async move { p.run(sink, token).await });
                } else {
                    poller.introduce(shutdown.clone());
                    telegram_poller = Some(poller);
                }
            }
            _ => tracing::info!("telegram channel disabled (no token)"),
        }
        // Discord too: it connects (HELLO, IDENTIFY) now; a message that arrives before the
        // coordinator exists waits in `late` until recovery is done.
        let mut discord_handle = None;
        match config.channels.discord.as_ref() {
            Some(d) if d.token.is_some() => {
                let settings = switchboard_discord::DiscordSettings {
                    token: d.token.clone().unwrap_or_default(),
                    api_url: d.api_url.clone(),
                    guilds: d.guilds.keys().cloned().collect(),
                    shards: d
                        .shards
                        .as_ref()
                        .and_then(|s| s.range().ok().map(|r| (r, s.total))),
                };
                let (handle, runner) = switchboard_discord::connect(settings)
                    .map_err(|e| GatewayError::Discord(e.to_string()))?;
                discord_handle = Some(handle);
                tokio::spawn(runner.run(late.clone(), shutdown.clone()));
            }
            _ => tracing::info!("discord channel disabled (no token)"),
        }
        let store = Store::for_config(&config)?
            .with_instance(&crate::cluster::instance_id(config.gateway.port));
        let clock = crate::cron::clock::from_env();
        let notices = Arc::new(crate::notices::Notices::new(
            config.owner.clone(),
            store.clone(),
            clock.clone(),
        ));
        let ledger = Arc::new(crate::usage::Ledger::new(
            &config,
            store.clone(),
            clock.clone(),
            notices.clone(),
        ));
        models.set_meter(ledger.clone());
        // What the first message would otherwise do itself, done beside start-up: today's
        // spending read (for the budget check) and the statements of a message compiled.
        let (loading, preparing) = (ledger.clone(), store.clone());
        tokio::spawn(async move {
            let (_, prepared) = tokio::join!(loading.load(), preparing.prepare_message_path());
            if let Err(e) = prepared {
                tracing::warn!(error = %e, "cannot prepare the statements of a message");
            }
        });
        // In the background and in parallel: a slow MCP server delays nothing but its own tools.
        let mcp = crate::tools::mcp::Servers::start(&config.mcp, shutdown.clone());
        let agents = Agents::new(config.clone(), Arc::new(models), store.clone(), mcp)
            .map_err(GatewayError::Workspace)?;
        let local = Arc::new(LocalChannel::default());
        let mut channels = Channels::default();
        channels.add(ChannelHandle::new("local", local.clone()));
        let web = Arc::new(WebChannel::new(config.state_dir().join("uploads")));
        channels.add(
            ChannelHandle::new("web", web.clone())
                .with_live(web.clone())
                .with_file_fetcher(web.clone())
                .with_audio(web.clone()),
        );
        for handle in [telegram_handle, discord_handle].into_iter().flatten() {
            channels.add(handle);
        }
        for h in extra {
            channels.add(h);
        }
        let oversight = crate::coordinator::Oversight {
            clock: clock.clone(),
            notices: notices.clone(),
            ledger,
        };
        let heartbeat = crate::heartbeat::Plan::from_config(&config);
        let coordinator =
            Coordinator::new(config, store, agents, channels, shutdown.clone(), oversight);
        notices.attach(coordinator.delivery().clone());
        // Stored work first: recovery queues every unanswered message in its chat's lane before
        // any channel can deliver a new one, so a chat is answered in the order it wrote even
        // when messages arrived while the gateway was down.
        let recovered = coordinator.recover().await?;
        if recovered.inbox + recovered.outbox + recovered.tasks_rerun + recovered.tasks_interrupted
            > 0
        {
            tracing::info!(?recovered, "resumed work left by the previous run");
        }
        // Cron and the heartbeat run on one gateway of those sharing a store (on SQLite, here).
        let heartbeat = heartbeat.map(|plan| {
            let beat = crate::heartbeat::Heartbeat::new(coordinator.clone(), clock, plan.clone());
            (plan, beat)
        });
        let state = heartbeat
            .as_ref()
            .map(|(plan, beat)| (plan.clone(), beat.state()));
        let beat = heartbeat.map(|(_, beat)| beat);
        let scheduling = coordinator.clone();
        coordinator.cluster().run_role(
            "scheduler",
            shutdown.clone(),
            move |token| {
                let cron = crate::cron::Scheduler::new(scheduling.clone(), scheduling.clock());
                let beat = beat.clone();
                async move {
                    match beat {
                        Some(beat) => {
                            tokio::join!(cron.run(token.clone()), beat.run(token));
                        }
                        None => cron.run(token).await,
                    }
                }
            },
            async {},
        );
        let heartbeat = state;
        tokio::spawn(crate::notices::watch(
            notices,
            coordinator.channels().clone(),
            coordinator.agents().tools().mcp().clone(),
            shutdown.clone(),
        ));
        // The one sink every platform hands its messages to.
        let sink: Arc<dyn switchboard_channel::InboundSink> = Arc::new(coordinator.clone());
        late.set(sink.clone());
        if let Some(p) = telegram_poller {
            if telegram_webhook.is_some() {
                // Every gateway behind the load balancer receives.
                let token = shutdown.clone();
                tokio::spawn(async move { p.run(sink, token).await });
            } else {
                // Telegram allows one long poll per bot: one gateway polls, the others send.
                let (standby, token) = (p.clone(), shutdown.clone());
                coordinator.cluster().run_role(
                    "telegram-poll",
                    shutdown.clone(),
                    move |token| {
                        let (p, sink) = (p.clone(), sink.clone());
                        async move { p.run(sink, token).await }
                    },
                    async move { standby.standby(&token).await },
                );
            }
        }
        started.disarm();
        Ok(Gateway {
            coordinator,
            local,
            web,
            recovered,
            shutdown,
            heartbeat,
            telegram_webhook,
        })
    }

    /// Serves the HTTP API on `listener` until `signal` completes, then shuts down gracefully.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        use axum::serve::ListenerExt;
        let listen = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let state = api::ApiState {
            shutdown: self.shutdown.clone(),
            coordinator: self.coordinator.clone(),
            local: self.local.clone(),
            token: self.coordinator.config().gateway.token.clone(),
            listen,
            heartbeat: self.heartbeat.clone(),
            web: self.web.clone(),
            logins: Arc::default(),
            activity: Arc::default(),
            pages: Arc::default(),
            telegram_webhook: self.telegram_webhook.clone(),
            redactor: Arc::new(crate::logging::redact::Redactor::new(
                &crate::config::secrets(self.coordinator.config()),
            )),
        };
        // The signal cancels the shared token: the listener stops accepting, waiting clients are
        // told to come back, lanes stop taking new messages, and turns in progress finish.
        tokio::spawn(state.activity.clone().run(self.shutdown.clone()));
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            stop.cancel();
        });
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(self.shutdown.clone().cancelled_owned());
        let result = server.await.map_err(GatewayError::Serve);
        tracing::info!("shutting down: finishing turns in progress");
        self.coordinator.shutdown(SHUTDOWN_GRACE).await;
        self.coordinator.cluster().leave().await;
        tracing::info!("stopped");
        result
    }
}

/// Checks the bind policy, then runs the gateway in the foreground until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), GatewayError> {
    let config = Arc::new(config);
    let ip = config.listen_ip();
    if !ip.is_loopback() && config.gateway.token.is_none() {
        return Err(GatewayError::InsecureBind {
            bind: config.gateway.bind.clone(),
        });
    }
    let addr = SocketAddr::new(ip, config.gateway.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Listen {
            addr,
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (is another gateway already running? `switchboard gateway status`)"
            } else {
                ""
            },
            source,
        })?;
    let gateway = Gateway::start(config.clone(), Models::from_config(&config), Vec::new()).await?;
    // For `gateway stop`, `backup restore` and `doctor` when the API cannot be reached.
    let _pid = crate::service::pidfile::write(&config.state_dir())
        .map_err(|e| tracing::warn!("cannot write the pid file: {e}"))
        .ok();
    crate::resident::heap::spawn_trimmer();
    spawn_startup_page_drop(
        gateway.coordinator.clone(),
        gateway.coordinator.store().clone(),
        gateway.coordinator.channels().clone(),
        gateway.coordinator.agents().tools().mcp().clone(),
    );
    tracing::info!(
        %addr,
        control_room = %format!("http://{addr}/"),
        state = %config.state_dir().display(),
        coordinator = config.coordinator(),
        "gateway listening"
    );
    gateway.serve(listener, shutdown_signal()).await
}

/// Once start-up is over (every channel connected or given up, ten seconds at most, and the
/// store's upkeep caught up with start-up's writes), reads the agents' workspace files into
/// memory (see `Agents::warm`) and drops the code pages only start-up needed
/// (see `resident::pages`); again once the MCP servers have made their first start (their
/// handshakes fault in code the idle gateway does not need: ~5 MiB for two stdio servers).
fn spawn_startup_page_drop(
    coordinator: Coordinator,
    store: crate::store::Store,
    channels: crate::channels::Channels,
    mcp: std::sync::Arc<crate::tools::mcp::Servers>,
) {
    use switchboard_channel::ChannelState;
    tokio::spawn(async move {
        for _ in 0..100 {
            if channels
                .health()
                .iter()
                .all(|c| c.health.state != ChannelState::Starting)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The first round of polling and recovery settle, and the store's upkeep catches up
        // with start-up's writes (its checkpoint and indexing code would fault back in).
        tokio::time::sleep(Duration::from_millis(200)).await;
        // What the first message would otherwise read from disk (and, on a host that reclaims
        // idle page cache, wait for).
        let agents = coordinator.clone();
        let _ = tokio::task::spawn_blocking(move || agents.agents().warm()).await;
        store.caught_up(Duration::from_secs(10)).await;
        store.shrink_memory().await;
        let bytes = tokio::task::spawn_blocking(|| {
            crate::resident::heap::trim_now();
            crate::resident::pages::drop_clean_pages()
        })
        .await
        .unwrap_or(0);
        tracing::debug!(
            kib = bytes / 1024,
            "dropped start-up pages of code and read-only data"
        );
        if mcp.is_empty() {
            return;
        }
        mcp.first_starts_done(Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes = tokio::task::spawn_blocking(crate::resident::pages::drop_clean_pages)
            .await
            .unwrap_or(0);
        tracing::debug!(kib = bytes / 1024, "dropped MCP start-up pages");
    });
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
