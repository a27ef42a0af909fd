//! Running the gateway as a long-lived service: its pid file (so `gateway stop`, `backup
//! restore` and `doctor` find a gateway even when its API cannot be reached) and the systemd
//! user unit `gateway install` writes.

pub mod pidfile;
pub mod systemd;
