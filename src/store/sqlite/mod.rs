//! The embedded backend: one SQLite file in the state dir, in WAL mode with `synchronous =
//! NORMAL` (a committed transaction survives a crash of the process, which is what the "never
//! lost" promises are about; only an OS crash or power cut can lose the last moments).
//!
//! `engine` gives the connections threads of their own (a writer that commits writes queued
//! together, a reader), `maintenance` indexes turns for search and checkpoints the WAL, and
//! `migrations` is the schema.

mod engine;
mod maintenance;
mod migrations;

pub(super) use engine::Engine;

use super::{Result, StoreError};
use maintenance::{Poke, spawn_maintenance};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

/// Opens (creating it if needed) the database at `path`, brings its schema up to date and
/// starts its threads.
pub(super) fn open(path: &Path) -> Result<Arc<Engine>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(engine::BUSY_WAIT)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "cache_size", -4_000)?; // 4 MiB of page cache at most
    // Checkpoints copy the WAL into the database and fsync; done inline they put a multi-
    // millisecond stall on whichever message happens to commit the 1000th page. The
    // maintenance thread does them instead.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // When the log starts over, a file larger than this is cut back to it.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // A batch of writes runs each in a savepoint, whose undo copies of pages past 64 KiB went
    // to a temporary file (created, written and unlinked per batch under a burst); they are
    // freed with the batch, so memory holds them.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    migrations::create_or_migrate(&mut conn)?;
    let reader = Connection::open(path)?;
    reader.busy_timeout(engine::BUSY_WAIT)?;
    reader.set_prepared_statement_cache_capacity(64);
    // Reads are point lookups and short scans; the OS page cache holds the rest.
    reader.pragma_update(None, "cache_size", -2_000)?;
    let written = Arc::new(Poke::default());
    let engine = Arc::new(Engine::start(conn, reader, written.clone())?);
    spawn_maintenance(path, Arc::downgrade(&engine), written);
    Ok(engine)
}

/// Checks a database file without changing it (a backup about to be restored): SQLite's
/// `integrity_check` must say `ok`, and its schema must be one this binary can open (not from a
/// newer version). Returns the schema version.
pub fn verify_file(path: &Path) -> Result<i64> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let found: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    if found != ["ok"] {
        return Err(StoreError::Corrupt(format!(
            "integrity check of {}: {}",
            path.display(),
            found.join("; ")
        )));
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let ours = migrations::latest_version();
    if version > ours {
        return Err(StoreError::Corrupt(format!(
            "{} has schema version {version}, newer than this binary's {ours}: restore it with the switchboard that wrote it",
            path.display()
        )));
    }
    Ok(version)
}
