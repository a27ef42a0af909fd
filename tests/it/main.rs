//! End-to-end tests: the real `switchboard` binary, real SQLite, real HTTP, against fakes of the
//! remote services (see `support/`). One test binary, so it links once.

mod approvals;
mod auth;
mod chat;
mod config_cli;
mod control_room;
mod crash;
mod cron;
mod discord;
mod exec;
mod faults;
mod files;
mod hostile;
mod import;
mod mcp;
mod media;
mod memory;
mod model_download;
mod models;
mod operations;
mod oversight;
mod reliability;
mod reset;
mod skills;
mod slash;
mod soak;
mod spoken;
mod stop;
mod store;
mod streaming;
mod support;
mod tasks;
mod telegram;
mod telegram_webhook;
mod voice;
mod web;
