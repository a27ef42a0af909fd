//! What the gateway keeps resident, and how it gives back what it no longer needs: a gateway
//! runs for months on small machines, so its idle size is a feature.
//!
//! - `heap`: returns memory freed after a burst of messages to the system (glibc keeps it).
//! - `pages`: after start-up, drops the pages of code and read-only data that only start-up
//!   touched from the process's mappings.

pub mod heap;
pub mod pages;
