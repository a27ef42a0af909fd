//! `switchboard skills list`: what each agent can load, and the SKILL.md files that are skipped
//! (with why), read straight from disk so it works with the gateway down.

use crate::config::Config;
use crate::tools::skills;
use serde_json::json;

pub fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let (found, skipped) = skills::catalogue(config);
    if json {
        let skills: Vec<_> = found
            .iter()
            .map(|s| json!({ "name": s.name, "description": s.description, "dir": s.dir, "agents": s.agents }))
            .collect();
        let skipped: Vec<_> = skipped
            .iter()
            .map(|b| json!({ "file": b.file.display().to_string(), "reason": b.reason }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "skills": skills, "skipped": skipped }))?
        );
        return Ok(());
    }
    if found.is_empty() {
        let roots: Vec<String> = config
            .skill_roots(config.coordinator())
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!(
            "no skills installed (a skill is a folder with a SKILL.md, in one of: {})",
            roots.join(", ")
        );
    }
    for s in &found {
        println!(
            "{}  ({})  {}\n    {}",
            s.name,
            s.agents.join(", "),
            s.dir,
            s.description
        );
    }
    for b in &skipped {
        eprintln!("skipped {}: {}", b.file.display(), b.reason);
    }
    Ok(())
}
