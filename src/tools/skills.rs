//! Skills in the Agent Skills format: a folder holding `SKILL.md` (YAML front matter with `name`
//! and `description`, then the instructions) and any files the instructions refer to.
//!
//! Skills are found afresh whenever their folders change (the kernel tells, see `watch`), so a
//! folder dropped into `skills/` is usable by the next message without a restart; finding them
//! is a few directory reads and the first lines of each `SKILL.md`. Only names and descriptions
//! go into the prompt; `read_skill` loads the rest when the agent decides it needs it, which
//! keeps the prompt small however many skills are installed.

use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The most of a file `read_skill` returns; the rest is named, not silently dropped.
const READ_LIMIT: usize = 32_000;
/// The Agent Skills format's limits (a longer name or description is a malformed skill).
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    pub name: String,
    pub description: String,
    /// The skill's folder; `read_skill` reads nothing outside it.
    pub dir: PathBuf,
}

/// A `SKILL.md` that could not be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub file: PathBuf,
    pub reason: String,
}

#[derive(Deserialize)]
struct FrontMatter {
    name: Option<String>,
    description: Option<String>,
}

/// Every skill under `roots` (each root holds one folder per skill). An earlier root wins when
/// two hold a skill of the same name, so pass the most specific first (the agent's workspace,
/// then `skills.dirs`, then the state dir's). A root that does not exist is simply empty.
pub fn discover(roots: &[PathBuf]) -> (Vec<Skill>, Vec<Skipped>) {
    let mut skills = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("SKILL.md").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let file = dir.join("SKILL.md");
            match load(&dir) {
                Ok(skill) => {
                    if seen.insert(skill.name.clone()) {
                        skills.push(skill);
                    }
                }
                Err(reason) => skipped.push(Skipped { file, reason }),
            }
        }
    }
    skills.sort_by(|a, b| a.name.cmp(&b.name));
    (skills, skipped)
}

/// Asks to be told (through [`crate::watched`]) when what [`discover`] would find under `roots`
/// changes: a skill folder added, removed or renamed, a `SKILL.md` edited. Call it before
/// `discover`, so a change while it reads is never missed. False if something cannot be
/// watched: then `discover` must run every time.
pub fn watch(roots: &[PathBuf]) -> bool {
    roots.iter().all(|root| {
        crate::watched::watch_dir(root)
            && std::fs::read_dir(root).map_or(true, |entries| {
                // Folders only (through symlinks): a stray file beside them holds no skill.
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .all(|p| crate::watched::watch_file(&p.join("SKILL.md")))
            })
    })
}

/// Reads and checks one skill folder's `SKILL.md`.
fn load(dir: &Path) -> Result<Skill, String> {
    let text = std::fs::read_to_string(dir.join("SKILL.md")).map_err(|e| e.to_string())?;
    let (front, _) = split(&text)?;
    let fm: FrontMatter =
        yaml_serde::from_str(front).map_err(|e| format!("front matter is not valid YAML: {e}"))?;
    let name = fm
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or("front matter has no `name`")?;
    if name.chars().count() > MAX_NAME {
        return Err(format!("`name` is longer than {MAX_NAME} characters"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '\\')
    {
        return Err(format!("`name` {name:?} may not contain spaces or slashes"));
    }
    let description = fm
        .description
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|d| !d.is_empty())
        .ok_or("front matter has no `description`")?;
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(format!(
            "`description` is longer than {MAX_DESCRIPTION} characters"
        ));
    }
    Ok(Skill {
        name,
        description,
        dir: dir.to_path_buf(),
    })
}

/// `(front matter, body)` of a `SKILL.md`: the file must open with a `---` line, and the front
/// matter ends at the next `---` line.
fn split(text: &str) -> Result<(&str, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or("does not start with a `---` front matter block")?;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Ok((&rest[..at], &rest[at + line.len()..]));
        }
        at += line.len();
    }
    Err("the front matter block is not closed with `---`".into())
}

/// The `prompt` section naming each skill, or `None` when there are none.
/// One installed skill and the agents that can load it.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub description: String,
    pub dir: String,
    pub agents: Vec<String>,
}

/// Every skill the config's agents can load (a folder shared by several agents is listed once,
/// with all of them), and the `SKILL.md` files skipped with why: for `skills list` and the
/// control room.
pub fn catalogue(config: &crate::config::Config) -> (Vec<Installed>, Vec<Skipped>) {
    use std::collections::BTreeMap;
    let mut found: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    let mut skipped: BTreeMap<PathBuf, String> = BTreeMap::new();
    for agent in config.agents.keys() {
        let (list, bad) = discover(&config.skill_roots(agent));
        for s in list {
            found
                .entry((s.name.clone(), s.dir.display().to_string()))
                .or_insert_with(|| (s.description.clone(), Vec::new()))
                .1
                .push(agent.clone());
        }
        for b in bad {
            skipped.insert(b.file, b.reason);
        }
    }
    (
        found
            .into_iter()
            .map(|((name, dir), (description, agents))| Installed {
                name,
                description,
                dir,
                agents,
            })
            .collect(),
        skipped
            .into_iter()
            .map(|(file, reason)| Skipped { file, reason })
            .collect(),
    )
}

pub fn prompt_section(skills: &[Skill]) -> Option<String> {
    if skills.is_empty() {
        return None;
    }
    let mut s = String::from(
        "## Skills\n\nInstructions for particular jobs. When one fits the request, load it with `read_skill` (its name) before you act, then follow it; `read_skill` with a `path` reads a file the skill refers to.\n",
    );
    for k in skills {
        s.push_str(&format!("\n- `{}`: {}", k.name, k.description));
    }
    Some(s)
}

/// `read_skill`, offered when the agent has skills.
pub fn read_skill_spec() -> crate::providers::ToolSpec {
    static SPEC: std::sync::LazyLock<crate::providers::ToolSpec> = std::sync::LazyLock::new(|| {
        super::builtin::spec(
            "read_skill",
            "Load a skill's instructions by its name (listed under Skills); with `path`, read a file inside that skill's folder.",
            serde_json::json!({ "type": "object", "properties": {
                "name": { "type": "string" },
                "path": { "type": "string", "description": "a file inside the skill's folder, e.g. `reference.md`" }
            }, "required": ["name"] }),
        )
    });
    SPEC.clone()
}

/// `read_skill`: the instructions of skill `name` (with a list of the files beside them), or with
/// `path` one of those files. Paths are relative to the skill's folder, and anything that would
/// leave it (`..`, an absolute path, a symlink pointing out) is refused.
pub fn read(skills: &[Skill], name: &str, path: Option<&str>) -> Result<String, String> {
    let skill = skills.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
        if names.is_empty() {
            format!("no skill named `{name}` (no skills are installed)")
        } else {
            format!("no skill named `{name}` (installed: {})", names.join(", "))
        }
    })?;
    let Some(path) = path
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "SKILL.md")
    else {
        let text = std::fs::read_to_string(skill.dir.join("SKILL.md"))
            .map_err(|e| format!("cannot read skill `{name}`: {e}"))?;
        let body = split(&text).map(|(_, b)| b).unwrap_or(&text).trim();
        let mut out = limit(body.to_string());
        let files = files_of(&skill.dir);
        if !files.is_empty() {
            out.push_str(&format!(
                "\n\n(Files in this skill, for read_skill with `path`: {})",
                files.join(", ")
            ));
        }
        return Ok(out);
    };
    let rel = Path::new(path);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "`{path}` is outside the skill's folder: give a path inside it, like `scripts/run.md`"
        ));
    }
    let root = skill
        .dir
        .canonicalize()
        .map_err(|e| format!("cannot read skill `{name}`: {e}"))?;
    let full = root
        .join(rel)
        .canonicalize()
        .map_err(|_| format!("skill `{name}` has no file `{path}`"))?;
    if !full.starts_with(&root) {
        return Err(format!("`{path}` is outside the skill's folder"));
    }
    if !full.is_file() {
        return Err(format!("`{path}` in skill `{name}` is not a file"));
    }
    let bytes = std::fs::read(&full).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("`{path}` is not a text file; it is at {}", full.display()))?;
    Ok(limit(text))
}

fn limit(mut text: String) -> String {
    if text.len() > READ_LIMIT {
        let total = text.len();
        let cut = text.floor_char_boundary(READ_LIMIT);
        text.truncate(cut);
        text.push_str(&format!("\n[truncated: {cut} of {total} bytes shown]"));
    }
    text
}

/// The files inside a skill's folder besides `SKILL.md` (relative paths, two levels deep at most,
/// at most 50), for the model to know what it may read.
fn files_of(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() && depth < 2 {
                stack.push((p, depth + 1));
            } else if ft.is_file()
                && let Ok(rel) = p.strip_prefix(dir)
                && rel != Path::new("SKILL.md")
            {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out.truncate(50);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(root: &Path, folder: &str, text: &str) {
        let d = root.join(folder);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("SKILL.md"), text).unwrap();
    }

    /// What `discover` reads can be watched, so it is not re-read every turn: also with a
    /// stray file beside the skill folders, and with a root that does not exist yet.
    #[test]
    fn skill_roots_can_be_watched_with_stray_files_and_missing_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("skills");
        skill(
            &root,
            "weather",
            "---\nname: weather\ndescription: Forecasts\n---\n",
        );
        std::fs::write(root.join("README.md"), "my skills").unwrap();
        assert!(watch(&[root, dir.path().join("not-yet")]));
    }

    #[test]
    fn finds_skills_skips_malformed_ones_and_lets_the_first_root_win() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        skill(
            a.path(),
            "pdf",
            "---\nname: pdf\ndescription: >\n  Fill and merge\n  PDF forms.\nlicense: MIT\n---\n# PDF\nUse pdftk.\n",
        );
        skill(
            b.path(),
            "pdf2",
            "---\nname: pdf\ndescription: shadowed\n---\nx",
        );
        skill(
            b.path(),
            "notes",
            "---\nname: notes\ndescription: Take notes\n---\nbody",
        );
        skill(b.path(), "broken", "no front matter here");
        skill(b.path(), "badyaml", "---\nname: [unclosed\n---\n");
        skill(b.path(), "nodesc", "---\nname: nodesc\n---\n");
        let missing = a.path().join("does-not-exist");
        let (skills, skipped) = discover(&[a.path().into(), missing, b.path().into()]);
        let names: Vec<(&str, &str)> = skills
            .iter()
            .map(|s| (s.name.as_str(), s.description.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("notes", "Take notes"),
                ("pdf", "Fill and merge PDF forms.")
            ]
        );
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .any(|s| s.file.ends_with("broken/SKILL.md") && s.reason.contains("front matter"))
        );
        assert!(
            skipped
                .iter()
                .any(|s| s.file.ends_with("nodesc/SKILL.md") && s.reason.contains("description"))
        );
        let section = prompt_section(&skills).unwrap();
        assert!(
            section.contains("- `pdf`: Fill and merge PDF forms."),
            "{section}"
        );
        assert!(
            !section.contains("Use pdftk"),
            "bodies stay out of the prompt"
        );
    }

    #[test]
    fn read_skill_returns_the_body_and_files_inside_and_refuses_escapes() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "owner's secret").unwrap();
        skill(
            root.path(),
            "deploy",
            "---\nname: deploy\ndescription: Ship it\n---\n\nRun the steps in steps/one.md.\n",
        );
        let dir = root.path().join("deploy");
        std::fs::create_dir_all(dir.join("steps")).unwrap();
        std::fs::write(dir.join("steps/one.md"), "step one").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("link.txt"))
            .unwrap();
        let (skills, _) = discover(&[root.path().into()]);

        let body = read(&skills, "deploy", None).unwrap();
        assert!(body.starts_with("Run the steps in steps/one.md."), "{body}");
        assert!(!body.contains("description:"), "{body}");
        assert!(body.contains("steps/one.md"), "{body}");
        assert_eq!(
            read(&skills, "deploy", Some("steps/one.md")).unwrap(),
            "step one"
        );

        for escape in [
            "../../etc/passwd",
            "/etc/passwd",
            "steps/../../deploy/../x",
            "link.txt",
        ] {
            let err = read(&skills, "deploy", Some(escape)).unwrap_err();
            assert!(
                err.contains("outside the skill") || err.contains("no file"),
                "{escape}: {err}"
            );
            assert!(!err.contains("owner's secret"));
        }
        let err = read(&skills, "nope", None).unwrap_err();
        assert!(err.contains("installed: deploy"), "{err}");
    }
}
