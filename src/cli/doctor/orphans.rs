//! Stored rows that point at agents, channels or models the config no longer has: cron jobs,
//! chats' `/agent` and `/model` choices, open sessions. A config edit that removes an agent or
//! a channel leaves them behind; the system people leave accumulates them for months.

use crate::config::Config;
use crate::store::Store;

#[derive(Debug)]
pub enum Fix {
    RemoveCron(i64),
    ClearPref {
        target: String,
        agent: bool,
        model: bool,
    },
    EndSessions(Vec<i64>),
}

#[derive(Debug)]
pub struct Orphan {
    pub what: String,
    pub fix: Fix,
}

/// Why `target` can no longer be reached, if it cannot.
fn target_gone(c: &Config, target: &str) -> Option<String> {
    let Ok(t) = target.parse::<switchboard_channel::Target>() else {
        return Some(format!("`{target}` is not a valid target"));
    };
    let configured = match t.channel.as_str() {
        "telegram" => c.channels.telegram.is_some(),
        "discord" => c.channels.discord.is_some(),
        _ => true,
    };
    (!configured).then(|| format!("channel {} is not configured", t.channel))
}

fn model_known(c: &Config, m: &str) -> bool {
    c.models.roles.contains_key(m)
        || m.split_once('/')
            .is_some_and(|(p, _)| c.providers.contains_key(p))
}

pub async fn find(c: &Config, store: &Store) -> crate::store::Result<Vec<Orphan>> {
    let mut out = Vec::new();
    for job in store.cron_jobs(None).await? {
        let why = if !c.agents.contains_key(&job.agent) {
            Some(format!("agent `{}` no longer exists", job.agent))
        } else {
            job.target.as_deref().and_then(|t| target_gone(c, t))
        };
        if let Some(why) = why {
            out.push(Orphan {
                what: format!("cron job #{} \"{}\": {why}", job.id, job.name),
                fix: Fix::RemoveCron(job.id),
            });
        }
    }
    for p in store.chat_prefs().await? {
        let agent = p.agent.as_deref().filter(|a| !c.agents.contains_key(*a));
        let model = p.model.as_deref().filter(|m| !model_known(c, m));
        let chat = target_gone(c, &p.target);
        if agent.is_none() && model.is_none() && chat.is_none() {
            continue;
        }
        let mut why = Vec::new();
        if let Some(a) = agent {
            why.push(format!("/agent {a}: no such agent"));
        }
        if let Some(m) = model {
            why.push(format!("/model {m}: no such role or provider"));
        }
        if let Some(ch) = &chat {
            why.push(ch.clone());
        }
        out.push(Orphan {
            what: format!("chat {}'s choice ({})", p.target, why.join("; ")),
            fix: Fix::ClearPref {
                target: p.target.clone(),
                agent: agent.is_some() || chat.is_some(),
                model: model.is_some() || chat.is_some(),
            },
        });
    }
    let gone: Vec<_> = store
        .open_sessions()
        .await?
        .into_iter()
        .filter_map(|s| {
            let why = if !c.agents.contains_key(&s.agent) {
                Some(format!("agent `{}` no longer exists", s.agent))
            } else {
                s.target.as_deref().and_then(|t| target_gone(c, t))
            };
            why.map(|w| (s, w))
        })
        .collect();
    if !gone.is_empty() {
        let mut reasons: Vec<String> = gone.iter().map(|(_, w)| w.clone()).collect();
        reasons.sort();
        reasons.dedup();
        out.push(Orphan {
            what: format!("{} open session(s): {}", gone.len(), reasons.join("; ")),
            fix: Fix::EndSessions(gone.iter().map(|(s, _)| s.id).collect()),
        });
    }
    Ok(out)
}

/// Removes what `find` found; returns how many rows changed.
pub async fn fix(store: &Store, orphans: &[Orphan]) -> crate::store::Result<usize> {
    let mut n = 0;
    for o in orphans {
        match &o.fix {
            Fix::RemoveCron(id) => n += usize::from(store.cron_remove(*id).await?),
            Fix::ClearPref {
                target,
                agent,
                model,
            } => {
                store.chat_pref_clear(target, *agent, *model).await?;
                n += 1;
            }
            Fix::EndSessions(ids) => n += store.sessions_end_ids(ids).await?,
        }
    }
    Ok(n)
}
