//! switchboard: one binary that keeps a fleet of LLM agents reachable on chat platforms.
pub mod access;
pub mod agent;
pub mod channels;
pub mod cli;
pub mod config;
pub mod coordinator;
pub mod cron;
pub mod delivery;
pub mod gateway;
pub mod lanes;
pub mod media;
pub mod providers;
pub mod resident;
pub mod store;
pub mod tools;
pub mod tts;
pub mod voice;
