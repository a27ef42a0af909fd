//! `switchboard skills list`: what each agent can load, and the SKILL.md files that are skipped
//! (with why), read straight from disk so it works with the gateway down.

use crate::config::Config;
use crate::tools::skills;
use serde_json::json;
use std::collections::BTreeMap;

pub fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    // A skill folder shared by several agents is listed once, with all of them.
    let mut found: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    for agent in config.agents.keys() {
        let (list, bad) = skills::discover(&config.skill_roots(agent));
        for s in list {
            found
                .entry((s.name.clone(), s.dir.display().to_string()))
                .or_insert_with(|| (s.description.clone(), Vec::new()))
                .1
                .push(agent.clone());
        }
        for b in bad {
            skipped.insert(b.file.display().to_string(), b.reason);
        }
    }
    if json {
        let skills: Vec<_> = found
            .iter()
            .map(|((name, dir), (description, agents))| {
                json!({ "name": name, "description": description, "dir": dir, "agents": agents })
            })
            .collect();
        let skipped: Vec<_> = skipped
            .iter()
            .map(|(file, reason)| json!({ "file": file, "reason": reason }))
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
    for ((name, dir), (description, agents)) in &found {
        println!("{name}  ({})  {dir}\n    {description}", agents.join(", "));
    }
    for (file, reason) in &skipped {
        eprintln!("skipped {file}: {reason}");
    }
    Ok(())
}
