//! The floor: the smallest bots that do what a message costs us without any of what we add. Each
//! keeps nothing, makes one model call per message and posts one reply, with the same libraries
//! the gateway uses (teloxide + reqwest, serenity), so the difference between its figures and
//! ours is what switchboard itself costs: storage, lanes, agents, the core.
//!
//! The bench binary runs itself as a floor bot when `SWITCHBOARD_FLOOR` is set.

use std::sync::Arc;

pub const ENV_KIND: &str = "SWITCHBOARD_FLOOR";
pub const ENV_API: &str = "SWITCHBOARD_FLOOR_API";
pub const ENV_MODEL: &str = "SWITCHBOARD_FLOOR_MODEL";

/// If this process was started as a floor bot, runs it (until killed) and returns true.
pub fn run_if_floor() -> bool {
    let Ok(kind) = std::env::var(ENV_KIND) else {
        return false;
    };
    let api = std::env::var(ENV_API).unwrap_or_default();
    let model = std::env::var(ENV_MODEL).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match kind.as_str() {
        "telegram" => runtime.block_on(telegram(api, model)),
        "discord" => runtime.block_on(discord(api, model)),
        other => eprintln!("unknown floor bot {other}"),
    }
    true
}

/// One Anthropic Messages call with the user's text; the reply's text.
async fn ask(http: &reqwest::Client, model: &str, text: &str) -> String {
    let body = serde_json::json!({
        "model": "claude-test",
        "max_tokens": 1024,
        "messages": [{ "role": "user", "content": text }],
    });
    let reply: serde_json::Value = match http
        .post(format!("{model}/v1/messages"))
        .header("x-api-key", "sk-floor")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => return "(model unreachable)".into(),
    };
    reply["content"][0]["text"]
        .as_str()
        .unwrap_or("(no text)")
        .to_string()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("http client")
}

/// teloxide's dispatcher (long polling, updates of one chat in order, chats concurrently).
async fn telegram(api: String, model: String) {
    use teloxide::prelude::*;
    let Ok(url) = reqwest::Url::parse(&api) else {
        eprintln!("bad api url {api}");
        return;
    };
    let bot = Bot::new("1:FLOOR").set_api_url(url);
    let http = http_client();
    let model = Arc::new(model);
    let handler = Update::filter_message().endpoint(
        |bot: Bot, msg: Message, http: reqwest::Client, model: Arc<String>| async move {
            let reply = ask(&http, &model, msg.text().unwrap_or_default()).await;
            bot.send_message(msg.chat.id, reply).await?;
            respond(())
        },
    );
    Dispatcher::builder(bot, handler)
        .dependencies(teloxide::dptree::deps![http, model])
        .build()
        .dispatch()
        .await;
}

struct DiscordHandler {
    http: reqwest::Client,
    model: String,
}

#[async_trait::async_trait]
impl serenity::all::EventHandler for DiscordHandler {
    async fn message(&self, ctx: serenity::all::Context, msg: serenity::all::Message) {
        if msg.author.bot {
            return;
        }
        let reply = ask(&self.http, &self.model, &msg.content).await;
        let _ = msg.channel_id.say(&ctx.http, reply).await;
    }
}

/// serenity's client with the gateway, as the adapter builds it (same intents, same proxy base).
async fn discord(api: String, model: String) {
    use serenity::all::GatewayIntents;
    let base = api.trim_end_matches('/');
    let base = base.strip_suffix("/api").unwrap_or(base).to_string();
    let http = serenity::http::HttpBuilder::new("FLOOR")
        .proxy(base)
        .ratelimiter_disabled(true)
        .build();
    let intents = GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let handler = DiscordHandler {
        http: http_client(),
        model,
    };
    match serenity::client::ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
    {
        Ok(mut client) => {
            if let Err(e) = client.start().await {
                eprintln!("floor discord bot stopped: {e}");
            }
        }
        Err(e) => eprintln!("floor discord bot: {e}"),
    }
}
