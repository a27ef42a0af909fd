//! switchboard: one binary that keeps a fleet of LLM agents reachable on chat platforms.
pub mod config;
pub mod store;
pub mod providers;
pub mod agent;
pub mod channels;
pub mod lanes;
pub mod coordinator;
pub mod delivery;
pub mod cli;
pub mod gateway;
