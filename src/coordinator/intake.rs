//! Files people send: downloaded through the channel (with the size checked first where the
//! platform says it), kept in the agent's workspace under `files/YYYY-MM-DD/`, and handed to the
//! model — images as images (made to fit the providers), PDFs as documents (for providers that
//! read them), text files inline (marked as data, up to a cap), anything else as a note of what
//! it is and where it is stored.

use super::Coordinator;
use crate::providers::Block;
use std::time::Duration;
use switchboard_channel::{FileKind, Inbound};

/// Largest file taken in (Telegram's bots may download 20 MB).
const MAX_FILE: u64 = 20 * 1024 * 1024;
/// Characters of a text file put into the message.
const INLINE_TEXT: usize = 50_000;

fn size_text(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / 1_048_576.0)
    } else {
        format!("{} KB", n.div_ceil(1024))
    }
}

impl Coordinator {
    /// The blocks `m`'s files add to the user's message; `Err` is the reply to send instead.
    pub(super) async fn take_files(&self, m: &Inbound) -> Result<Vec<Block>, String> {
        let fetcher = self
            .channels()
            .for_target(&m.chat.to_string())
            .and_then(|h| h.file_fetcher());
        let agent = self.agent_for(m).await;
        let Some(ws) = self.agents().workspace(&agent) else {
            return Err("⚠️ I cannot store files right now.".into());
        };
        let day = ws.local(chrono::Utc::now()).format("%Y-%m-%d").to_string();
        let dir = ws.root().join("files").join(&day);
        let mut blocks = Vec::new();
        if m.files.iter().any(|f| f.kind == FileKind::Image) {
            self.tell_if_blind(m, &agent).await;
        }
        for (i, f) in m.files.iter().enumerate() {
            let name = f
                .name
                .clone()
                .unwrap_or_else(|| format!("file-{}-{i}", m.message_id));
            if let Some(size) = f.size_bytes
                && size > MAX_FILE
            {
                return Err(format!(
                    "That file ({name}, {}) is larger than the {} I can take.",
                    size_text(size),
                    size_text(MAX_FILE)
                ));
            }
            let Some(fetcher) = fetcher else {
                blocks.push(Block::Text {
                    text: format!(
                        "[the user sent a file, {name}, that this channel cannot download]"
                    ),
                });
                continue;
            };
            let bytes =
                match tokio::time::timeout(Duration::from_secs(60), fetcher.fetch_file(f)).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, file = %name, "cannot download a file");
                        return Err(format!(
                            "⚠️ I could not download {name}; please send it again."
                        ));
                    }
                    Err(_) => {
                        return Err(format!(
                            "⚠️ Downloading {name} took too long; please send it again."
                        ));
                    }
                };
            if bytes.len() as u64 > MAX_FILE {
                return Err(format!(
                    "That file ({name}, {}) is larger than the {} I can take.",
                    size_text(bytes.len() as u64),
                    size_text(MAX_FILE)
                ));
            }
            let mime = f.mime_type.clone().unwrap_or_else(|| {
                mime_guess::from_path(&name)
                    .first_or_octet_stream()
                    .to_string()
            });
            // Writing and decoding a camera photo takes a few hundred ms: not on a runtime worker,
            // where it would hold up other chats.
            let is_image = f.kind == FileKind::Image;
            let (dir2, name2, mime2) = (dir.clone(), name.clone(), mime.clone());
            let (bytes, done) = tokio::task::spawn_blocking(move || {
                let stored = crate::media::store(&dir2, &name2, &bytes);
                let fitted = match (&stored, is_image) {
                    (Ok(p), true) => Some(crate::media::for_model(p, &bytes, &mime2)),
                    _ => None,
                };
                // A PDF's text, kept beside it for providers that are not given PDFs.
                if let Ok(p) = &stored
                    && mime2 == "application/pdf"
                    && let Err(e) = crate::media::pdf::extract(p, &bytes)
                {
                    tracing::info!(error = %e, "no text from a PDF");
                }
                (bytes, stored.map(|s| (s, fitted)))
            })
            .await
            .map_err(|e| format!("⚠️ cannot store {name}: {e}"))?;
            let (stored, fitted) = done.map_err(|e| format!("⚠️ {e}"))?;
            let shown = stored
                .strip_prefix(ws.root())
                .unwrap_or(&stored)
                .display()
                .to_string();
            let size = size_text(bytes.len() as u64);
            // `fitted` is there exactly for images (decoded on the blocking pool above).
            match (f.kind, fitted) {
                (FileKind::Image, Some(fitted)) => match fitted {
                    Ok((path, media_type)) => {
                        blocks.push(Block::Text {
                            text: format!("[the user sent an image, saved as {shown}]"),
                        });
                        blocks.push(Block::ImageFile {
                            path: path.display().to_string(),
                            media_type,
                        });
                    }
                    Err(e) => blocks.push(Block::Text {
                        text: format!("[the user sent {name} ({mime}, {size}), saved as {shown}; it could not be read as an image: {e}]"),
                    }),
                },
                (_, _) if is_text(&mime) => {
                    let mut body = String::from_utf8_lossy(&bytes).into_owned();
                    if let Some(total) = crate::tools::cut_chars(&mut body, INLINE_TEXT) {
                        body.push_str(&format!("\n[cut: {INLINE_TEXT} of {total} characters shown; the whole file is {shown}]"));
                    }
                    blocks.push(Block::Text {
                        text: format!(
                            "[the user sent {name}, saved as {shown}]\n{}",
                            crate::tools::untrusted(&format!("file {name}"), &body)
                        ),
                    });
                }
                (_, _) if mime == "application/pdf" => {
                    blocks.push(Block::Text {
                        text: format!("[the user sent {name} ({size}), saved as {shown}]"),
                    });
                    blocks.push(Block::DocumentFile {
                        path: stored.display().to_string(),
                        media_type: mime,
                        name,
                    });
                }
                (_, _) => blocks.push(Block::Text {
                    text: format!("[the user sent {name} ({mime}, {size}), saved as {shown}]"),
                }),
            }
        }
        Ok(blocks)
    }
}

impl Coordinator {
    /// Tells the chat, once, that its model cannot see the images it is sent.
    async fn tell_if_blind(&self, m: &Inbound, agent: &str) {
        let role = self.chat_model(m).await.unwrap_or_else(|| {
            self.config()
                .agents
                .get(agent)
                .and_then(|a| a.model.clone())
                .unwrap_or_else(|| "default".into())
        });
        if self.agents().models().sees_images(&role) {
            return;
        }
        let chat = m.chat.to_string();
        if !self.inner.blind_told.lock().insert(chat.clone()) {
            return;
        }
        let model = self.agents().resolve_model(&role);
        if let Err(e) = self.post(&crate::store::NewOutbox {
            target: chat,
            thread: m.thread.clone(),
            reply_to: Some(m.message_id.clone()),
            text: format!(
                "ℹ️ {model} cannot see images: it gets a note of what you sent and where it is stored. `/model ROLE` switches to one that can."
            ),
            dedupe_key: Some(format!("blind:{}:{}", m.chat, m.message_id)),
            file: None,
        }).await {
            tracing::warn!(error = %e, "cannot tell the chat its model is blind");
        }
    }
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/json" | "application/xml" | "application/x-yaml" | "application/yaml"
        )
}
