//! The memory search index: SQLite FTS5 with BM25 ranking over the agents' Markdown memory (line by
//! line) and the text of every conversation turn. Files are re-indexed when their modification
//! time or size changes, so hand edits are found.
//!
//! Turns are indexed in batches, not as they are stored: FTS5 inserts were a large share of the
//! cost of answering a message. The maintenance thread indexes new turns every half second (two when quiet)
//! ([`index_new_turns`]), and a search first indexes whatever is still pending, so it always sees
//! every turn.

use super::{Cached, Result, Store};
use rusqlite::params;
use std::path::Path;

/// A search result: where it came from and the matching text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryHit {
    /// `MEMORY.md`, `memory/2026-11-23.md`, or `conversation <session id>`.
    pub source: String,
    pub text: String,
}

/// The text blocks of a stored turn (a JSON array of content blocks).
pub(crate) fn turn_text(content: &str) -> String {
    serde_json::from_str::<serde_json::Value>(content)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turns indexed per transaction: short enough not to hold up a message's commit for long.
pub(crate) const TURN_BATCH: i64 = 500;

/// Indexes up to `limit` turns stored since the last call; returns how many turns it looked at.
/// Run it inside a transaction (the writer's, or the maintenance thread's own).
pub(crate) fn index_new_turns(tx: &rusqlite::Connection, limit: i64) -> rusqlite::Result<usize> {
    let upto: i64 = tx.one(
        "SELECT upto FROM fts_progress WHERE what = 'turns'",
        [],
        |r| r.get(0),
    )?;
    let rows: Vec<(i64, String, i64, String)> = {
        let mut st = tx.prepare_cached(
            "SELECT t.id, s.agent, t.session_id, t.content FROM turns t
             JOIN sessions s ON s.id = t.session_id WHERE t.id > ?1 ORDER BY t.id LIMIT ?2",
        )?;
        st.query_map(params![upto, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(0);
    };
    for (_, agent, session, content) in &rows {
        index_turn(tx, agent, *session, content)?;
    }
    tx.run(
        "UPDATE fts_progress SET upto = ?1 WHERE what = 'turns'",
        [last],
    )?;
    Ok(rows.len())
}

fn index_turn(
    c: &rusqlite::Connection,
    agent: &str,
    session: i64,
    content: &str,
) -> rusqlite::Result<()> {
    let text = turn_text(content);
    if text.trim().is_empty() {
        return Ok(());
    }
    c.run(
        "INSERT INTO memory_fts (text, source, agent, ref) VALUES (?1, 'turn', ?2, ?3)",
        params![text, agent, session.to_string()],
    )?;
    Ok(())
}

/// `alice birthday?` → `"alice" OR "birthday"` (or with AND): words only, quoted, so no user
/// input is FTS syntax.
fn fts_query_with(q: &str, op: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(op))
}

fn fts_query(q: &str) -> Option<String> {
    fts_query_with(q, " OR ")
}

impl Store {
    /// Re-indexes the agent's memory files that changed since they were last indexed.
    pub async fn memory_index_files(&self, agent: &str, root: &Path) -> Result<usize> {
        let agent = agent.to_owned();
        let root = root.to_path_buf();
        let mut files = vec![root.join("MEMORY.md")];
        if let Ok(dir) = std::fs::read_dir(root.join("memory")) {
            files.extend(
                dir.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "md")),
            );
        }
        let who = agent.clone();
        let known: std::collections::HashMap<String, (i64, i64)> = self
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT path, mtime, size FROM memory_files WHERE agent = ?1",
                )?;
                let rows = st
                    .query_map([who], |r| {
                        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .await?;
        let mut changed = 0;
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64);
            let size = meta.len() as i64;
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let seen = known.get(&rel).copied();
            if seen == Some((mtime, size)) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let agent = agent.clone();
            self.write(move |tx| {
                if seen.is_some() {
                    tx.run(
                        "DELETE FROM memory_fts WHERE rowid IN
                         (SELECT fts_rowid FROM memory_rows WHERE agent = ?1 AND path = ?2)",
                        params![agent, rel],
                    )?;
                    tx.run(
                        "DELETE FROM memory_rows WHERE agent = ?1 AND path = ?2",
                        params![agent, rel],
                    )?;
                }
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                    tx.run(
                        "INSERT INTO memory_fts (text, source, agent, ref) VALUES (?1, ?2, ?3, NULL)",
                        params![line.trim_start_matches("- "), rel, agent],
                    )?;
                    tx.run(
                        "INSERT INTO memory_rows (fts_rowid, agent, path) VALUES (last_insert_rowid(), ?1, ?2)",
                        params![agent, rel],
                    )?;
                }
                tx.run(
                    "INSERT INTO memory_files (agent, path, mtime, size) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (agent, path) DO UPDATE SET mtime = excluded.mtime, size = excluded.size",
                    params![agent, rel, mtime, size],
                )?;
                Ok(())
            }).await?;
            changed += 1;
        }
        Ok(changed)
    }

    /// The best matches for `query` in the agent's memory and conversations (BM25 order): lines
    /// with every word first; only if there are none, lines with any of them.
    pub async fn memory_search(
        &self,
        agent: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<MemoryHit>> {
        let Some(all) = fts_query_with(query, " AND ") else {
            return Ok(Vec::new());
        };
        self.index_pending_turns().await?;
        let hits = self.memory_match(agent, &all, limit).await?;
        if !hits.is_empty() {
            return Ok(hits);
        }
        match fts_query(query) {
            Some(any) => self.memory_match(agent, &any, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// Indexes every turn not yet in the search index.
    pub async fn index_pending_turns(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self
                .write(move |c| Ok(index_new_turns(c, TURN_BATCH)?))
                .await?;
            total += n;
            if n < TURN_BATCH as usize {
                return Ok(total);
            }
        }
    }

    async fn memory_match(&self, agent: &str, q: &str, limit: usize) -> Result<Vec<MemoryHit>> {
        let agent = agent.to_owned();
        let q = q.to_owned();
        self.scan(move |c| {
            let mut st = c.prepare_cached(
                "SELECT source, ref, text FROM memory_fts WHERE memory_fts MATCH ?1 AND agent = ?2
                 ORDER BY bm25(memory_fts) LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![q, agent, limit as i64], |r| {
                    let source: String = r.get(0)?;
                    let reference: Option<String> = r.get(1)?;
                    Ok(MemoryHit {
                        source: if source == "turn" {
                            format!("conversation {}", reference.unwrap_or_default())
                        } else {
                            source
                        },
                        text: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_words_only() {
        assert_eq!(
            fts_query("Alice's birthday?").as_deref(),
            Some(r#""alice" OR "s" OR "birthday""#)
        );
        assert_eq!(fts_query("*** ()"), None);
    }

    #[tokio::test]
    async fn a_stored_turn_is_found_at_once_and_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let s = store
            .session_open(
                "jarvis|local:x|",
                crate::store::SessionKind::Main,
                "jarvis",
                None,
                None,
            )
            .await
            .unwrap();
        let turn = |text: &str| crate::store::NewTurn {
            role: "user",
            content: serde_json::json!([{ "type": "text", "text": text }]).to_string(),
            tokens: 5,
        };
        store
            .turns_add(s, &[turn("the gate code is 4417"), turn("noted")])
            .await
            .unwrap();
        // Searched before the maintenance thread's next round: the search indexes it first.
        let hits = store.memory_search("jarvis", "gate code", 5).await.unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert!(hits[0].text.contains("4417"));
        // Nothing is indexed twice.
        assert_eq!(store.index_pending_turns().await.unwrap(), 0);
        store
            .turns_add(s, &[turn("the gate code changed")])
            .await
            .unwrap();
        assert_eq!(
            store
                .memory_search("jarvis", "gate code", 5)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(
            store
                .memory_search("clu", "gate code", 5)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
