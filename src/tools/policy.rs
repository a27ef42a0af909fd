//! Which tools an agent is offered (`agents.NAME.tools.allow/deny`) and which ask first
//! (`tools.approve`). Rules are globs over a tool's names: a built-in tool has one (`exec`,
//! `web_fetch`); an MCP tool has two, `mcp:SERVER/TOOL` and the `SERVER__TOOL` the model sees, and
//! a rule matching either applies.

use crate::config::Config;

/// Whether any of `globs` matches any of `names`. Globs were checked when the config loaded; one
/// that does not parse matches nothing.
pub fn matches(globs: &[String], names: &[&str]) -> bool {
    globs.iter().any(|g| match glob::Pattern::new(g) {
        Ok(p) => names.iter().any(|n| p.matches(n)),
        Err(_) => false,
    })
}

/// One agent's allow/deny lists.
pub struct Policy<'a> {
    allow: &'a [String],
    deny: &'a [String],
}

impl<'a> Policy<'a> {
    pub fn for_agent(config: &'a Config, agent: &str) -> Self {
        match config.agents.get(agent) {
            Some(a) => Self {
                allow: &a.tools.allow,
                deny: &a.tools.deny,
            },
            None => Self {
                allow: &[],
                deny: &[],
            },
        }
    }

    /// An empty allow list allows every tool; deny wins over allow.
    pub fn allows(&self, names: &[&str]) -> bool {
        (self.allow.is_empty() || matches(self.allow, names)) && !matches(self.deny, names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(globs: &[&str]) -> Vec<String> {
        globs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs_match_either_name_and_deny_wins() {
        let allow = v(&["mcp:time/*", "web_*", "remember"]);
        let deny = v(&["web_search", "time__convert*"]);
        let p = Policy {
            allow: &allow,
            deny: &deny,
        };
        assert!(p.allows(&["time__get_current_time", "mcp:time/get_current_time"]));
        assert!(!p.allows(&["time__convert_time", "mcp:time/convert_time"]));
        assert!(p.allows(&["web_fetch"]));
        assert!(!p.allows(&["web_search"]));
        assert!(!p.allows(&["exec"]));
        assert!(!p.allows(&["notes__add", "mcp:notes/add"]));
        let open = Policy {
            allow: &[],
            deny: &deny,
        };
        assert!(open.allows(&["exec"]));
        assert!(!open.allows(&["web_search"]));
    }
}
