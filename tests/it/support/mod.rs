//! Reusable test support: fakes of remote services and a harness for the real gateway.
#![allow(dead_code)]

pub mod browser;
pub mod fake_discord;
pub mod fake_model;
pub mod fake_model_host;
pub mod fake_telegram;
pub mod fake_web;
pub mod gateway;
pub mod mcp;
pub mod nginx;
pub mod postgres;
pub mod telegram_html;
pub mod voice;

#[allow(unused_imports)]
pub use fake_model::{FakeModel, Gate, Reply};
#[allow(unused_imports)]
pub use gateway::{TestGateway, stderr, stdout};

/// A fake model, a fake Telegram and the gateway on them (DMs open to anyone), with `extra`
/// top-level config keys.
pub async fn telegram_gateway(
    extra: &str,
) -> (FakeModel, fake_telegram::FakeTelegram, TestGateway) {
    let model = FakeModel::start().await;
    let tg = fake_telegram::FakeTelegram::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ telegram: {{ token: "123456:SECRET-TG", apiUrl: "{}", dmPolicy: "open" }} }}, {extra}"#,
            tg.url
        ),
    )
    .await;
    (model, tg, gw)
}

/// A fake model, a fake Discord and the gateway on them, connected: DMs open, guild 40 served in
/// every channel without mentions; `extra` top-level config keys.
pub async fn discord_gateway(extra: &str) -> (FakeModel, fake_discord::FakeDiscord, TestGateway) {
    let model = FakeModel::start().await;
    let d = fake_discord::FakeDiscord::start().await;
    let gw = TestGateway::start(
        &model,
        &format!(
            r#"channels: {{ discord: {{ token: "MTIz.SECRET-DC", apiUrl: "{}", dmPolicy: "open",
                 requireMention: false, guilds: {{ "40": {{ channels: "*" }} }} }} }}, {extra}"#,
            d.api_url
        ),
    )
    .await;
    d.wait_until("the bot to identify", |d| {
        d.identifies() >= 1 && d.connected()
    })
    .await;
    (model, d, gw)
}
