//! An agent's workspace: Markdown files the user can read and edit by hand.
//!
//! `IDENTITY.md` (persona), `MEMORY.md` (durable facts) and `memory/YYYY-MM-DD.md` (daily notes, in
//! the configured time zone). Every turn sees the files as they are now, so hand edits apply at
//! once; they are kept in memory between changes (see `crate::watched`).

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    tz: Tz,
}

impl Workspace {
    /// Opens (creating with starter content on first use) the workspace of agent `name`.
    pub fn open(root: &Path, name: &str, tz: Tz) -> std::io::Result<Workspace> {
        std::fs::create_dir_all(root.join("memory"))?;
        std::fs::create_dir_all(root.join("projects"))?;
        // Made now so that it can be watched for skills (see `crate::watched`).
        std::fs::create_dir_all(root.join("skills"))?;
        let identity = root.join("IDENTITY.md");
        if !identity.exists() {
            std::fs::write(&identity, starter_identity(name))?;
        }
        let memory = root.join("MEMORY.md");
        if !memory.exists() {
            std::fs::write(&memory, STARTER_MEMORY)?;
        }
        let heartbeat = root.join("HEARTBEAT.md");
        if !heartbeat.exists() {
            std::fs::write(&heartbeat, STARTER_HEARTBEAT)?;
        }
        Ok(Workspace {
            root: root.to_path_buf(),
            tz,
        })
    }

    /// What a heartbeat checks (HEARTBEAT.md).
    pub fn heartbeat(&self) -> String {
        read(&self.root.join("HEARTBEAT.md"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn today(&self) -> NaiveDate {
        self.local(Utc::now()).date_naive()
    }

    pub fn local(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        t.with_timezone(&self.tz)
    }

    pub fn daily_path(&self, day: NaiveDate) -> PathBuf {
        self.root
            .join("memory")
            .join(format!("{}.md", day.format("%Y-%m-%d")))
    }

    /// What a turn's prompt is built from, read as of one moment: IDENTITY.md, MEMORY.md, and
    /// today's and yesterday's notes with their dates.
    pub fn prompt_files(&self) -> PromptFiles {
        let (today, yesterday) = (self.today(), self.yesterday());
        let (identity, memory) = (self.root.join("IDENTITY.md"), self.root.join("MEMORY.md"));
        let (t, y) = (self.daily_path(today), self.daily_path(yesterday));
        let [identity, memory, t, y] = crate::watched::read_all([&identity, &memory, &t, &y]);
        PromptFiles {
            identity,
            memory,
            today: (today, t),
            yesterday: (yesterday, y),
        }
    }

    pub fn yesterday(&self) -> NaiveDate {
        let t = self.today();
        t.checked_sub_days(Days::new(1)).unwrap_or(t)
    }

    /// Appends a fact to MEMORY.md.
    pub fn remember(&self, text: &str) -> std::io::Result<()> {
        append(
            &self.root.join("MEMORY.md"),
            &format!("- {}\n", one_line(text)),
        )
    }

    /// Appends a timestamped entry to today's note, creating it with a heading if needed.
    pub fn note_today(&self, text: &str) -> std::io::Result<()> {
        let now = self.local(Utc::now());
        let path = self.daily_path(now.date_naive());
        if !path.exists() {
            append(&path, &format!("# {}\n\n", now.format("%A %-d %B %Y")))?;
        }
        append(
            &path,
            &format!("- {} {}\n", now.format("%H:%M"), text.trim()),
        )
    }
}

/// See [`Workspace::prompt_files`].
pub struct PromptFiles {
    pub identity: std::sync::Arc<str>,
    pub memory: std::sync::Arc<str>,
    pub today: (NaiveDate, std::sync::Arc<str>),
    pub yesterday: (NaiveDate, std::sync::Arc<str>),
}

/// Whether `text` is what a new workspace of agent `name` starts with in `file` (IDENTITY.md,
/// MEMORY.md, HEARTBEAT.md): an import may replace such a file without losing anybody's words.
pub fn is_starter(file: &str, name: &str, text: &str) -> bool {
    match file {
        "IDENTITY.md" => text == starter_identity(name),
        "MEMORY.md" => text == STARTER_MEMORY,
        "HEARTBEAT.md" => text == STARTER_HEARTBEAT,
        _ => false,
    }
}

const STARTER_MEMORY: &str = "# Memory\n\nDurable facts worth keeping across conversations.\n\n";

/// A checklist a person edits; the heartbeat reads it every `heartbeat.every`.
const STARTER_HEARTBEAT: &str = "# Heartbeat\n\n\
What to look at on every heartbeat. Keep it short: each run reads this whole file.\n\n\
- Anything in today's notes that was promised for today and is not done?\n\
- A task that failed or has been running for hours?\n\
- Something in MEMORY.md with a date that is today or tomorrow?\n";

fn starter_identity(name: &str) -> String {
    let mut display = name.to_string();
    if let Some(first) = display.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!(
        "# {display}\n\nYou are {display}, a personal assistant reachable by chat around the clock.\n\
         Be brief and concrete: people read you on a phone. Use your tools: remember what matters,\n\
         search memory before saying you don't know, and hand long jobs to a task.\n"
    )
}

/// The file's text (empty if it does not exist), from memory until it changes on disk.
fn read(p: &Path) -> String {
    crate::watched::read(p).to_string()
}

fn append(p: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)?;
    f.write_all(text.as_bytes())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_files_and_remembering() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path(), "jarvis", chrono_tz::Europe::London).unwrap();
        assert!(ws.prompt_files().identity.contains("You are Jarvis"));
        ws.remember("Alice's birthday is 3 March").unwrap();
        ws.note_today("Called the bank about the mortgage").unwrap();
        let files = ws.prompt_files();
        assert!(files.memory.contains("- Alice's birthday is 3 March"));
        assert!(files.today.1.contains("Called the bank"));
        // An existing identity is never overwritten.
        std::fs::write(dir.path().join("IDENTITY.md"), "custom").unwrap();
        let ws = Workspace::open(dir.path(), "jarvis", chrono_tz::UTC).unwrap();
        assert_eq!(&*ws.prompt_files().identity, "custom");
    }
}
