//! Memory: each agent's IDENTITY.md, MEMORY.md, HEARTBEAT.md and daily notes, viewed, edited and
//! searched. An edit carries the digest of the text it started from; if the file changed
//! meanwhile (the agent remembered something), the save is refused and both texts are shown,
//! so nothing anyone wrote is lost.

use crate::gateway::api::ApiState;
use crate::web::layout::{Ctx, back, notice};
use crate::web::{Page, WebError};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

const TOP: &[&str] = &["IDENTITY.md", "MEMORY.md", "HEARTBEAT.md"];

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `name` as a path in the workspace, when it is one of the memory files (never anything else:
/// no `..`, no other folders).
fn file_path(root: &std::path::Path, name: &str) -> Option<PathBuf> {
    if TOP.contains(&name) {
        return Some(root.join(name));
    }
    let day = name.strip_prefix("memory/")?.strip_suffix(".md")?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(root.join("memory").join(format!("{day}.md")))
}

fn root_of(s: &ApiState, agent: &str) -> Result<PathBuf, WebError> {
    s.coordinator
        .agents()
        .workspace(agent)
        .map(|w| w.root().to_path_buf())
        .ok_or_else(|| WebError::not_found(format!("No agent named `{agent}`.")))
}

/// The daily notes, newest first.
fn daily_notes(root: &std::path::Path) -> Vec<String> {
    let mut days: Vec<String> = std::fs::read_dir(root.join("memory"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.ends_with(".md"))
                .collect()
        })
        .unwrap_or_default();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days
}

pub async fn index(State(s): State<ApiState>, ctx: Ctx) -> Page {
    Ok(ctx.page(
        "/memory",
        "Memory",
        html! {
            p { "Each agent's memory is Markdown in its workspace. Pick an agent:" }
            ul { @for a in s.coordinator.agents().names() { li { a href={"/memory/" (a)} { (a) } } } }
        },
    ))
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    msg: Option<String>,
}

pub async fn agent(
    State(s): State<ApiState>,
    ctx: Ctx,
    Path(agent): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Page {
    let root = root_of(&s, &agent)?;
    let hits = if q.q.trim().is_empty() {
        None
    } else {
        let store = s.coordinator.store();
        // What the agent's own search would find: the files as they are now.
        store
            .memory_index_files(&agent, &root)
            .await
            .map_err(WebError::internal)?;
        Some(
            store
                .memory_search(&agent, q.q.trim(), 20)
                .await
                .map_err(WebError::internal)?,
        )
    };
    Ok(ctx.page(
        "/memory",
        &format!("Memory of {agent}"),
        html! {
            (notice(q.msg.as_deref()))
            form role="search" method="get" action={"/memory/" (agent)} {
                label for="q" { "Search memory and past conversations" }
                div.row { input #q type="search" name="q" value=(q.q); button type="submit" { "Search" } }
            }
            @if let Some(hits) = &hits {
                h2 { "Found" }
                @if hits.is_empty() { p.mute { "Nothing matches." } }
                ul { @for h in hits { li { strong { (h.source) } pre { (h.text) } } } }
            }
            h2 { "Files" }
            ul {
                @for f in TOP { li { a href={"/memory/" (agent) "/file?name=" (f)} { (f) } } }
            }
            h2 { "Daily notes" }
            @let days = daily_notes(&root);
            @if days.is_empty() { p.mute { "None yet." } }
            ul { @for d in &days { li { a href={"/memory/" (agent) "/file?name=memory/" (d)} { (d.trim_end_matches(".md")) } } } }
        },
    ))
}

#[derive(Deserialize, Default)]
pub struct FileQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    msg: Option<String>,
}

fn editor(ctx: &Ctx, agent: &str, name: &str, text: &str, base: &str) -> maud::Markup {
    html! {
        form method="post" action={"/memory/" (agent) "/file?name=" (crate::web::auth::urlencode(name))} {
            (ctx.csrf_field())
            input type="hidden" name="base" value=(base);
            label for="text" { "Contents of " (name) }
            textarea #text name="text" rows="20" spellcheck="true" { (text) }
            p { button.primary type="submit" { "Save" } " " a href={"/memory/" (agent)} { "Back" } }
        }
    }
}

pub async fn file(
    State(s): State<ApiState>,
    ctx: Ctx,
    Path(agent): Path<String>,
    Query(q): Query<FileQuery>,
) -> Page {
    let root = root_of(&s, &agent)?;
    let path = file_path(&root, &q.name)
        .ok_or_else(|| WebError::bad(format!("`{}` is not a memory file.", q.name)))?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(WebError::internal(format!("cannot read {}: {e}", q.name))),
    };
    Ok(ctx.page(
        "/memory",
        &format!("{agent}: {}", q.name),
        html! {
            (notice(q.msg.as_deref()))
            (editor(&ctx, &agent, &q.name, &text, &digest(&text)))
        },
    ))
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    base: String,
}

pub async fn save(
    State(s): State<ApiState>,
    ctx: Ctx,
    Path(agent): Path<String>,
    Query(q): Query<FileQuery>,
    Form(f): Form<SaveForm>,
) -> Result<Response, WebError> {
    let root = root_of(&s, &agent)?;
    let path = file_path(&root, &q.name)
        .ok_or_else(|| WebError::bad(format!("`{}` is not a memory file.", q.name)))?;
    let now = std::fs::read_to_string(&path).unwrap_or_default();
    if digest(&now) != f.base {
        let page = ctx.page(
            "/memory",
            &format!("{agent}: {}", q.name),
            html! {
                p.note.error role="alert" { (q.name) " changed while you were editing it (the agent may have remembered something). Nothing was saved. Its text now is below, with your version under it: merge them and save again." }
                (editor(&ctx, &agent, &q.name, &now, &digest(&now)))
                h2 { "Your version" }
                pre { (f.text) }
            },
        );
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    // Browsers send CRLF line ends from a textarea; the files are LF.
    let text = f.text.replace("\r\n", "\n");
    write_atomic(&path, &text)
        .map_err(|e| WebError::internal(format!("cannot save {}: {e}", q.name)))?;
    if let Err(e) = s
        .coordinator
        .store()
        .memory_index_files(&agent, &root)
        .await
    {
        tracing::warn!(error = %e, "cannot re-index memory after an edit");
    }
    tracing::info!(agent, file = %q.name, "memory file edited in the control room");
    Ok(back(
        &format!(
            "/memory/{agent}/file?name={}",
            crate::web::auth::urlencode(&q.name)
        ),
        &format!("Saved {}; the next prompt carries it.", q.name),
    )
    .into_response())
}

/// Written beside, then renamed over: a reader (the next prompt) sees the old text or the new,
/// never half of it.
fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("md.saving");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_memory_files_can_be_named() {
        let root = std::path::Path::new("/ws");
        assert!(file_path(root, "MEMORY.md").is_some());
        assert_eq!(
            file_path(root, "memory/2026-12-06.md"),
            Some(PathBuf::from("/ws/memory/2026-12-06.md"))
        );
        for bad in [
            "../x.md",
            "memory/../../etc/passwd.md",
            "memory/notes.md",
            "/etc/passwd",
            "skills/x/SKILL.md",
            "",
        ] {
            assert!(file_path(root, bad).is_none(), "{bad}");
        }
    }
}
