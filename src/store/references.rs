//! What stored rows point at — agents, chats, models — for `doctor`, which finds the rows a
//! config change left pointing at something that no longer exists, and `doctor --fix`, which
//! removes them.

use super::sql::p;
use super::{Result, Store, now_ms};

/// An open session and the agent and chat it belongs to.
#[derive(Debug, Clone)]
pub struct OpenSession {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub agent: String,
    pub target: Option<String>,
}

/// A chat's `/agent` and `/model` choices.
#[derive(Debug, Clone)]
pub struct ChatPref {
    pub target: String,
    pub agent: Option<String>,
    pub model: Option<String>,
}

impl Store {
    pub async fn open_sessions(&self) -> Result<Vec<OpenSession>> {
        self.scan(move |c| {
            let rows = c.all("SELECT id, key, kind, agent, target FROM sessions WHERE ended_at IS NULL ORDER BY id", p![], |r| {
                Ok(OpenSession {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    kind: r.get(2)?,
                    agent: r.get(3)?,
                    target: r.get(4)?,
                })
            })?;
            Ok(rows)
        }).await
    }

    pub async fn chat_prefs(&self) -> Result<Vec<ChatPref>> {
        self.scan(move |c| {
            let rows = c.all(
                "SELECT target, agent, model FROM chat_prefs ORDER BY target",
                p![],
                |r| {
                    Ok(ChatPref {
                        target: r.get(0)?,
                        agent: r.get(1)?,
                        model: r.get(2)?,
                    })
                },
            )?;
            Ok(rows)
        })
        .await
    }

    /// Forgets a chat's `/agent` choice (`agent`) and/or `/model` choice (`model`); a row with
    /// neither left goes.
    pub async fn chat_pref_clear(&self, target: &str, agent: bool, model: bool) -> Result<()> {
        let target = target.to_owned();
        self.write(move |tx| {
            tx.run(
                "UPDATE chat_prefs SET agent = CASE WHEN ?2 THEN NULL ELSE agent END,
                                       model = CASE WHEN ?3 THEN NULL ELSE model END
                 WHERE target = ?1",
                p![target, agent, model],
            )?;
            tx.run(
                "DELETE FROM chat_prefs WHERE target = ?1 AND agent IS NULL AND model IS NULL",
                p![target],
            )?;
            Ok(())
        })
        .await
    }

    /// Ends the open sessions with these ids (their history stays, as for `/new`).
    pub async fn sessions_end_ids(&self, ids: &[i64]) -> Result<usize> {
        let ids = ids.to_vec();
        self.write(move |tx| {
            let mut n = 0;
            for id in ids {
                n += tx.run(
                    "UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
                    p![id, now_ms()],
                )?;
            }
            Ok(n)
        })
        .await
    }
}
