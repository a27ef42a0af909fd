//! The memory search index over the agents' Markdown memory (line by line) and the text of every
//! conversation turn. On SQLite it is FTS5 with BM25 ranking; on PostgreSQL, its own full-text
//! search (an `english` tsvector per line, GIN-indexed, ranked with `ts_rank`), which stems and
//! ranks comparably. Files are re-indexed when their modification time or size changes, so hand
//! edits are found.
//!
//! On SQLite turns are indexed in batches, not as they are stored: FTS5 inserts were a large
//! share of the cost of answering a message. The maintenance thread indexes new turns every half
//! second (two when quiet) ([`index_new_turns`]), and a search first indexes whatever is still
//! pending, so it always sees every turn. On PostgreSQL a turn's text is indexed in the
//! statement that stores it (`sessions::insert_turns`): the server does the work, and several gateways
//! writing turns at once could not agree on a "done up to" mark anyway.

use super::sql::{Db, Dialect, p};
use super::{Result, Store};
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

/// Indexes up to `limit` turns stored since the last call (SQLite; on PostgreSQL turns are
/// indexed as they are stored); returns how many turns it looked at. Run it in a write.
pub(crate) fn index_new_turns(tx: &Db, limit: i64) -> Result<usize> {
    if tx.dialect() == Dialect::Postgres {
        return Ok(0);
    }
    let upto: i64 = tx.value("SELECT upto FROM fts_progress WHERE what = 'turns'", p![])?;
    let rows: Vec<(i64, String, i64, String)> = tx.all(
        "SELECT t.id, s.agent, t.session_id, t.content FROM turns t
         JOIN sessions s ON s.id = t.session_id WHERE t.id > ?1 ORDER BY t.id LIMIT ?2",
        p![upto, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(0);
    };
    for (_, agent, session, content) in &rows {
        let text = turn_text(content);
        if text.trim().is_empty() {
            continue;
        }
        tx.run(
            "INSERT INTO memory_fts (text, source, agent, ref) VALUES (?1, 'turn', ?2, ?3)",
            p![text, agent, session.to_string()],
        )?;
    }
    tx.run(
        "UPDATE fts_progress SET upto = ?1 WHERE what = 'turns'",
        p![last],
    )?;
    Ok(rows.len())
}

/// The words of a query, lower-cased: nothing a user types is search syntax.
fn words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `alice birthday?` → `"alice" OR "birthday"` (FTS5) or `alice | birthday` (PostgreSQL), or with
/// AND.
fn query_with(dialect: Dialect, words: &[String], all: bool) -> String {
    match (dialect, all) {
        (Dialect::Sqlite, all) => words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(if all { " AND " } else { " OR " }),
        (Dialect::Postgres, all) => words.join(if all { " & " } else { " | " }),
    }
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
                let rows = c.all(
                    "SELECT path, mtime, size FROM memory_files WHERE agent = ?1",
                    p![who],
                    |r| Ok((r.get::<String>(0)?, (r.get(1)?, r.get(2)?))),
                )?;
                Ok(rows.into_iter().collect())
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
            self.write_long(move |tx| {
                let lines = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| l.trim_start_matches("- "));
                match tx.dialect() {
                    Dialect::Sqlite => {
                        if seen.is_some() {
                            tx.run(
                                "DELETE FROM memory_fts WHERE rowid IN
                                 (SELECT fts_rowid FROM memory_rows WHERE agent = ?1 AND path = ?2)",
                                p![agent, rel],
                            )?;
                            tx.run(
                                "DELETE FROM memory_rows WHERE agent = ?1 AND path = ?2",
                                p![agent, rel],
                            )?;
                        }
                        for line in lines {
                            tx.run(
                                "INSERT INTO memory_fts (text, source, agent, ref) VALUES (?1, ?2, ?3, NULL)",
                                p![line, rel, agent],
                            )?;
                            tx.run(
                                "INSERT INTO memory_rows (fts_rowid, agent, path) VALUES (last_insert_rowid(), ?1, ?2)",
                                p![agent, rel],
                            )?;
                        }
                    }
                    Dialect::Postgres => {
                        tx.run(
                            "DELETE FROM memory_docs WHERE agent = ?1 AND path = ?2",
                            p![agent, rel],
                        )?;
                        for line in lines {
                            tx.run(
                                "INSERT INTO memory_docs (agent, source, path, text) VALUES (?1, ?2, ?2, ?3)",
                                p![agent, rel, line],
                            )?;
                        }
                    }
                }
                tx.run(
                    "INSERT INTO memory_files (agent, path, mtime, size) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (agent, path) DO UPDATE SET mtime = excluded.mtime, size = excluded.size",
                    p![agent, rel, mtime, size],
                )?;
                Ok(())
            }).await?;
            changed += 1;
        }
        Ok(changed)
    }

    /// The best matches for `query` in the agent's memory and conversations (best ranked first):
    /// lines with every word first; only if there are none, lines with any of them.
    pub async fn memory_search(
        &self,
        agent: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<MemoryHit>> {
        let words = words(query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        self.index_pending_turns().await?;
        let hits = self.memory_match(agent, &words, true, limit).await?;
        if !hits.is_empty() || words.len() == 1 {
            return Ok(hits);
        }
        self.memory_match(agent, &words, false, limit).await
    }

    /// Indexes every turn not yet in the search index.
    pub async fn index_pending_turns(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self
                .write_long(move |c| index_new_turns(c, TURN_BATCH))
                .await?;
            total += n;
            if n < TURN_BATCH as usize {
                return Ok(total);
            }
        }
    }

    async fn memory_match(
        &self,
        agent: &str,
        words: &[String],
        all: bool,
        limit: usize,
    ) -> Result<Vec<MemoryHit>> {
        let agent = agent.to_owned();
        let words = words.to_vec();
        self.scan(move |c| {
            let q = query_with(c.dialect(), &words, all);
            let sql = match c.dialect() {
                Dialect::Sqlite => {
                    "SELECT source, ref, text FROM memory_fts WHERE memory_fts MATCH ?1 AND agent = ?2
                     ORDER BY bm25(memory_fts) LIMIT ?3"
                }
                Dialect::Postgres => {
                    "SELECT source, reference, text FROM memory_docs, to_tsquery('english', ?1) q
                     WHERE tsv @@ q AND agent = ?2 ORDER BY ts_rank(tsv, q) DESC, id LIMIT ?3"
                }
            };
            c.all(sql, p![q, agent, limit as i64], |r| {
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
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_words_only() {
        let w = words("Alice's birthday?");
        assert_eq!(
            query_with(Dialect::Sqlite, &w, false),
            r#""alice" OR "s" OR "birthday""#
        );
        assert_eq!(
            query_with(Dialect::Postgres, &w, true),
            "alice & s & birthday"
        );
        assert!(words("*** ()").is_empty());
    }
}
