//! Pairing requests and approved senders (see `crate::access` for the policy).

use super::sql::p;
use super::{Result, Store, now_ms};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PairingRequest {
    pub channel: String,
    pub sender: String,
    pub name: Option<String>,
    pub code: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AllowedSender {
    pub channel: String,
    pub sender: String,
    pub name: Option<String>,
    pub approved_at: i64,
}

/// What happened when an unknown sender asked for pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingOutcome {
    /// A new code: tell the sender.
    NewCode(String),
    /// The sender already has a live code: say nothing more.
    AlreadyPending,
    /// Too many requests are pending: say nothing.
    TooManyPending,
}

impl Store {
    pub async fn is_allowed(&self, channel: &str, sender: &str) -> Result<bool> {
        let channel = channel.to_owned();
        let sender = sender.to_owned();
        self.read(move |c| {
            Ok(c.opt(
                "SELECT 1 FROM allowed_senders WHERE channel = ?1 AND sender = ?2",
                p![channel, sender],
                |_| Ok(()),
            )?
            .is_some())
        })
        .await
    }

    /// Creates a pairing code for an unknown sender, unless one is live or too many are pending.
    pub async fn pairing_request(
        &self,
        channel: &str,
        sender: &str,
        name: Option<&str>,
        code: &str,
        ttl_ms: i64,
        max_pending: i64,
    ) -> Result<PairingOutcome> {
        let channel = channel.to_owned();
        let sender = sender.to_owned();
        let name = name.map(str::to_owned);
        let code = code.to_owned();
        let now = now_ms();
        self.write(move |tx| {
            tx.run(
                "DELETE FROM pairing_requests WHERE expires_at <= ?1",
                p![now],
            )?;
            let live = tx.opt(
                "SELECT 1 FROM pairing_requests WHERE channel = ?1 AND sender = ?2",
                p![channel, sender],
                |_| Ok(()),
            )?;
            if live.is_some() {
                return Ok(PairingOutcome::AlreadyPending);
            }
            let pending: i64 = tx.value(
                "SELECT count(*) FROM pairing_requests WHERE channel = ?1",
                p![channel],
            )?;
            if pending >= max_pending {
                return Ok(PairingOutcome::TooManyPending);
            }
            tx.run(
                "INSERT INTO pairing_requests (channel, sender, name, code, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                p![channel, sender, name, code, now, now + ttl_ms],
            )?;
            Ok(PairingOutcome::NewCode(code.to_string()))
        })
        .await
    }

    /// Approves the live request with `code` on `channel`; returns the approved sender.
    pub async fn pairing_approve(
        &self,
        channel: &str,
        code: &str,
    ) -> Result<Option<AllowedSender>> {
        let channel = channel.to_owned();
        let code = code.to_owned();
        let now = now_ms();
        self.write(move |tx| {
            let req = tx.opt(
                "SELECT sender, name FROM pairing_requests
                 WHERE channel = ?1 AND upper(code) = upper(?2) AND expires_at > ?3",
                p![channel, code, now],
                |r| Ok((r.get::<String>(0)?, r.get::<Option<String>>(1)?)),
            )?;
            let Some((sender, name)) = req else {
                return Ok(None);
            };
            tx.run(
                "DELETE FROM pairing_requests WHERE channel = ?1 AND sender = ?2",
                p![channel, sender],
            )?;
            tx.run(
                "INSERT INTO allowed_senders (channel, sender, name, approved_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (channel, sender) DO NOTHING",
                p![channel, sender, name, now],
            )?;
            Ok(Some(AllowedSender {
                channel: channel.to_string(),
                sender,
                name,
                approved_at: now,
            }))
        }).await
    }

    /// Drops the pending request with `code` on `channel` (the sender stays unknown); false if
    /// there was none.
    pub async fn pairing_deny(&self, channel: &str, code: &str) -> Result<bool> {
        let channel = channel.to_owned();
        let code = code.to_owned();
        self.write(move |c| {
            Ok(c.run(
                "DELETE FROM pairing_requests WHERE channel = ?1 AND upper(code) = upper(?2)",
                p![channel, code],
            )? > 0)
        })
        .await
    }

    pub async fn pairing_revoke(&self, channel: &str, sender: &str) -> Result<bool> {
        let channel = channel.to_owned();
        let sender = sender.to_owned();
        self.write(move |c| {
            Ok(c.run(
                "DELETE FROM allowed_senders WHERE channel = ?1 AND sender = ?2",
                p![channel, sender],
            )? > 0)
        })
        .await
    }

    pub async fn pairing_list(&self) -> Result<(Vec<PairingRequest>, Vec<AllowedSender>)> {
        let now = now_ms();
        self.scan(move |c| {
            let pending = c.all(
                "SELECT channel, sender, name, code, expires_at FROM pairing_requests
                 WHERE expires_at > ?1 ORDER BY created_at",
                p![now],
                |r| {
                    Ok(PairingRequest {
                        channel: r.get(0)?,
                        sender: r.get(1)?,
                        name: r.get(2)?,
                        code: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                },
            )?;
            let allowed = c.all(
                "SELECT channel, sender, name, approved_at FROM allowed_senders ORDER BY approved_at",
                p![],
                |r| {
                    Ok(AllowedSender {
                        channel: r.get(0)?,
                        sender: r.get(1)?,
                        name: r.get(2)?,
                        approved_at: r.get(3)?,
                    })
                },
            )?;
            Ok((pending, allowed))
        }).await
    }
}
