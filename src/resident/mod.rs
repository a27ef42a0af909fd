//! What the gateway keeps resident, and how it gives back what it no longer needs: a gateway
//! runs for months on small machines, so its idle size is a feature.
//!
//! - `heap`: returns memory freed after a burst of messages to the system (glibc keeps it), and
//!   after a quiet minute the code the messages faulted in.
//! - `pages`: drops the clean pages of code and read-only data from the process's mappings
//!   (after start-up, after a quiet minute of messages or of the control room).

pub mod heap;
pub mod pages;
