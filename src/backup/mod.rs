//! Backups of a switchboard installation: the config file, every agent's workspace and a
//! consistent snapshot of the database, in `<stateDir>/backups/<YYYYMMDD-HHMMSS>/`.
//!
//! The database copy is SQLite's `VACUUM INTO`, which reads one transaction's view of the
//! database: it is safe while a gateway keeps writing, and the copy is compact. Everything that
//! changes state wholesale (`reset`, `backup restore`, `doctor --fix`, `import openclaw --apply`)
//! takes a backup through here first and stops if it fails.
//!
//! A `manifest.json` in each backup records where every workspace lived, so `restore` can put
//! them back where they were even when an agent's `workspace` is a custom path.

use crate::config::Config;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup failed ({what}): {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("backup failed (database): {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, BackupError>;

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BackupError {
    move |source| BackupError::Io {
        what: what.to_string(),
        source,
    }
}

/// What a backup holds, written beside it as `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// When it was taken (RFC 3339).
    pub created: String,
    /// Why (`backup`, `reset`, `restore`, `doctor --fix`, `import`).
    pub reason: String,
    pub version: String,
    /// The config file's name inside the backup and where it was taken from.
    pub config: Option<(String, PathBuf)>,
    /// The database snapshot's schema version, when there was a database.
    pub schema: Option<i64>,
    /// Agent name → the workspace directory it was copied from.
    pub workspaces: Vec<(String, PathBuf)>,
}

/// One backup on disk, for `backup list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub path: PathBuf,
    pub bytes: u64,
    pub manifest: Option<Manifest>,
}

pub fn root(c: &Config) -> PathBuf {
    c.state_dir().join("backups")
}

/// Takes a backup; returns its directory. `reason` is recorded in the manifest.
pub async fn create(c: &Config, config_path: &Path, reason: &str) -> Result<PathBuf> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let root = root(c);
    let mut dir = root.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = root.join(format!("{stamp}-{n}"));
    }
    // Written under a temporary name and renamed at the end: a backup directory that exists is
    // a complete one.
    let partial = root.join(format!(".{stamp}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(io(partial.display()))?;
    let result = fill(c, config_path, reason, &partial).await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &dir).map_err(io(dir.display()))?;
    Ok(dir)
}

async fn fill(c: &Config, config_path: &Path, reason: &str, dir: &Path) -> Result<()> {
    let mut manifest = Manifest {
        created: chrono::Local::now().to_rfc3339(),
        reason: reason.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        config: None,
        schema: None,
        workspaces: Vec::new(),
    };
    if config_path.exists() {
        let name = config_path.file_name().map_or_else(
            || "config.json5".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        std::fs::copy(config_path, dir.join(&name)).map_err(io("config"))?;
        let from = config_path
            .canonicalize()
            .unwrap_or_else(|_| config_path.to_path_buf());
        manifest.config = Some((name, from));
    }
    if c.db_path().exists() {
        let store = Store::open(&c.db_path())?;
        store.backup_to(&dir.join("switchboard.db")).await?;
        manifest.schema = Some(store.schema_version().await?);
    }
    for agent in c.agents.keys() {
        let ws = c.workspace(agent);
        if ws.exists() {
            copy_dir(&ws, &dir.join("agents").join(agent)).map_err(io(agent))?;
            manifest.workspaces.push((agent.clone(), ws));
        }
    }
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::Invalid(e.to_string()))?;
    std::fs::write(dir.join("manifest.json"), text).map_err(io("manifest"))?;
    Ok(())
}

/// Every backup in `<stateDir>/backups/`, oldest first.
pub fn list(c: &Config) -> Result<Vec<Listed>> {
    let root = root(c);
    let entries = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(root.display())(e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if hidden || !path.is_dir() {
            continue;
        }
        out.push(Listed {
            bytes: dir_size(&path),
            manifest: read_manifest(&path),
            path,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// What `restore` put back.
#[derive(Debug)]
pub struct Restored {
    /// The backup of the state that was replaced.
    pub saved: PathBuf,
    pub database: bool,
    pub config: Option<PathBuf>,
    pub workspaces: Vec<String>,
}

/// Puts a backup back. The caller has made sure no gateway runs on this state. The database copy
/// is verified before anything is touched, and the current state is backed up first.
pub async fn restore(c: &Config, config_path: &Path, from: &Path) -> Result<Restored> {
    let from = from
        .canonicalize()
        .map_err(|e| BackupError::Invalid(format!("cannot read {}: {e}", from.display())))?;
    if !from.is_dir() {
        return Err(BackupError::Invalid(format!(
            "{} is not a backup directory",
            from.display()
        )));
    }
    let manifest = read_manifest(&from);
    let db = from.join("switchboard.db");
    let has_db = db.is_file();
    let agents_dir = from.join("agents");
    if !has_db && !agents_dir.is_dir() {
        return Err(BackupError::Invalid(format!(
            "{} holds neither a database nor workspaces: not a switchboard backup",
            from.display()
        )));
    }
    if has_db {
        crate::store::verify_file(&db)
            .map_err(|e| BackupError::Invalid(format!("not restoring {}: {e}", from.display())))?;
    }
    let saved = create(c, config_path, "restore").await?;
    let mut done = Restored {
        saved,
        database: false,
        config: None,
        workspaces: Vec::new(),
    };
    if has_db {
        let live = c.db_path();
        if let Some(parent) = live.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent.display()))?;
        }
        let tmp = live.with_extension("db.restoring");
        std::fs::copy(&db, &tmp).map_err(io("database"))?;
        for suffix in ["-wal", "-shm"] {
            remove_file(Path::new(&format!("{}{suffix}", live.display())))?;
        }
        std::fs::rename(&tmp, &live).map_err(io("database"))?;
        done.database = true;
    }
    if let Ok(entries) = std::fs::read_dir(&agents_dir) {
        for e in entries.flatten() {
            let agent = e.file_name().to_string_lossy().into_owned();
            let dest = manifest
                .as_ref()
                .and_then(|m| m.workspaces.iter().find(|(a, _)| *a == agent))
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| c.workspace(&agent));
            if dest.exists() {
                std::fs::remove_dir_all(&dest).map_err(io(dest.display()))?;
            }
            copy_dir(&e.path(), &dest).map_err(io(dest.display()))?;
            done.workspaces.push(agent);
        }
    }
    done.workspaces.sort();
    if let Some((name, _)) = manifest.as_ref().and_then(|m| m.config.clone())
        && from.join(&name).is_file()
    {
        std::fs::copy(from.join(&name), config_path).map_err(io("config"))?;
        done.config = Some(config_path.to_path_buf());
    }
    Ok(done)
}

fn remove_file(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(p.display())(e)),
    }
}

/// Removes the database (with its WAL) and every agent's workspace: `reset --all`.
pub fn remove_state(c: &Config) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        remove_file(Path::new(&format!("{}{suffix}", c.db_path().display())))?;
    }
    for agent in c.agents.keys() {
        let ws = c.workspace(agent);
        if ws.exists() {
            std::fs::remove_dir_all(&ws).map_err(io(ws.display()))?;
        }
    }
    Ok(())
}

/// Copies a directory tree (regular files and directories; symlinks are not followed, so a
/// workspace cannot pull files from elsewhere into a backup).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> (Config, PathBuf) {
        let path = dir.join("config.json5");
        std::fs::write(
            &path,
            format!(
                "{{ stateDir: \"{}\", providers: {{ anthropic: {{}} }}, models: {{ default: \"anthropic/x\" }}, agents: {{ jarvis: {{ coordinator: true }} }} }}",
                dir.join("state").display()
            ),
        )
        .unwrap();
        (Config::load(&path).unwrap(), path)
    }

    #[tokio::test]
    async fn a_backup_restores_what_it_took_and_keeps_what_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (c, path) = config(dir.path());
        let store = Store::open(&c.db_path()).unwrap();
        store.cron_clear().await.unwrap();
        let ws = c.workspace("jarvis");
        std::fs::create_dir_all(ws.join("memory")).unwrap();
        std::fs::write(ws.join("MEMORY.md"), "the boat is blue").unwrap();
        let b = create(&c, &path, "backup").await.unwrap();
        assert!(b.join("switchboard.db").is_file());
        assert!(b.join("agents/jarvis/MEMORY.md").is_file());
        let listed = list(&c).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].manifest.as_ref().unwrap().reason, "backup");
        assert!(listed[0].bytes > 0);

        std::fs::write(ws.join("MEMORY.md"), "the boat is red").unwrap();
        let r = restore(&c, &path, &b).await.unwrap();
        assert!(r.database);
        assert_eq!(r.workspaces, ["jarvis"]);
        assert_eq!(
            std::fs::read_to_string(ws.join("MEMORY.md")).unwrap(),
            "the boat is blue"
        );
        assert_eq!(
            std::fs::read_to_string(r.saved.join("agents/jarvis/MEMORY.md")).unwrap(),
            "the boat is red",
            "what the restore replaced is kept"
        );
    }

    #[tokio::test]
    async fn a_corrupt_database_is_refused_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (c, path) = config(dir.path());
        Store::open(&c.db_path()).unwrap();
        let b = create(&c, &path, "backup").await.unwrap();
        let db = b.join("switchboard.db");
        let mut bytes = std::fs::read(&db).unwrap();
        let n = bytes.len();
        for x in &mut bytes[n / 2..] {
            *x = 0x5a;
        }
        bytes[100..4096].iter_mut().for_each(|x| *x = 0xff);
        std::fs::write(&db, bytes).unwrap();
        let e = restore(&c, &path, &b).await.unwrap_err().to_string();
        assert!(
            e.contains("integrity") || e.contains("malformed") || e.contains("not a database"),
            "{e}"
        );
        assert_eq!(
            list(&c).unwrap().len(),
            1,
            "no backup of the state was taken"
        );
    }
}
