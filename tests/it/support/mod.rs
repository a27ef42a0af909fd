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

#[allow(unused_imports)]
pub use fake_model::{FakeModel, Gate, Reply};
#[allow(unused_imports)]
pub use gateway::{TestGateway, stderr, stdout};
