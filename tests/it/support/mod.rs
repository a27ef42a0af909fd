//! Reusable test support: fakes of remote services and a harness for the real gateway.
#![allow(dead_code)]

pub mod fake_discord;
pub mod fake_model;
pub mod fake_model_host;
pub mod fake_telegram;
pub mod fake_web;
pub mod gateway;
pub mod mcp;
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
