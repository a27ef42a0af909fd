//! An MCP tool result as the model gets it: text (marked as data, bounded), images for vision
//! models, and a note for what cannot be shown.

use crate::providers::Image;
use crate::tools::{ToolOutput, untrusted};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// Characters of text passed on; the rest is cut with a note.
const TEXT_LIMIT: usize = 20_000;
/// Base64 bytes of images passed on per result.
const IMAGE_LIMIT: usize = 4 * 1024 * 1024;
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

pub fn output(source: &str, r: CallToolResult) -> ToolOutput {
    let mut parts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut image_bytes = 0;
    for c in r.content {
        match c {
            ContentBlock::Text(t) => parts.push(t.text),
            ContentBlock::Image(i) => {
                if !IMAGE_TYPES.contains(&i.mime_type.as_str()) {
                    parts.push(format!("[image of type {} not shown]", i.mime_type));
                } else if image_bytes + i.data.len() > IMAGE_LIMIT {
                    parts.push(format!(
                        "[image of {} KB left out: too large]",
                        i.data.len() * 3 / 4 / 1024
                    ));
                } else {
                    image_bytes += i.data.len();
                    parts.push(format!("[image {} attached]", images.len() + 1));
                    images.push(Image {
                        media_type: i.mime_type,
                        data: i.data,
                    });
                }
            }
            ContentBlock::Audio(a) => parts.push(format!(
                "[audio ({}, {} KB) not shown]",
                a.mime_type,
                a.data.len() * 3 / 4 / 1024
            )),
            ContentBlock::Resource(e) => match e.resource {
                ResourceContents::TextResourceContents { uri, text, .. } => {
                    parts.push(format!("[resource {uri}]\n{text}"))
                }
                ResourceContents::BlobResourceContents { uri, mime_type, .. } => {
                    parts.push(format!(
                        "[resource {uri}: {} data not shown]",
                        mime_type.as_deref().unwrap_or("binary")
                    ))
                }
                _ => parts.push("[resource of an unknown kind]".into()),
            },
            ContentBlock::ResourceLink(l) => parts.push(format!("[link {}: {}]", l.name, l.uri)),
            _ => parts.push("[content of an unknown kind]".into()),
        }
    }
    if parts.is_empty()
        && let Some(v) = r.structured_content
    {
        parts.push(v.to_string());
    }
    let mut text = parts.join("\n");
    if let Some(total) = crate::tools::cut_chars(&mut text, TEXT_LIMIT) {
        text.push_str(&format!(
            "\n[result truncated: {TEXT_LIMIT} of {total} characters shown]"
        ));
    }
    ToolOutput {
        text: untrusted(source, &text),
        images,
        is_error: r.is_error.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_images_and_limits() {
        let r: CallToolResult = serde_json::from_value(serde_json::json!({
            "content": [
                { "type": "text", "text": "hello" },
                { "type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png" },
                { "type": "image", "data": "AAAA", "mimeType": "image/tiff" },
                { "type": "text", "text": "x".repeat(25_000) },
            ]
        }))
        .unwrap();
        let out = output("mcp:t/x", r);
        assert!(!out.is_error);
        assert_eq!(out.images.len(), 1);
        assert_eq!(out.images[0].media_type, "image/png");
        assert!(
            out.text
                .starts_with("<untrusted source=\"mcp:t/x\">\nhello\n[image 1 attached]")
        );
        assert!(out.text.contains("image/tiff not shown"));
        assert!(
            out.text.contains("[result truncated: 20000 of"),
            "{}",
            &out.text[..100]
        );
        let err: CallToolResult = serde_json::from_value(serde_json::json!({
            "content": [{ "type": "text", "text": "bad input" }], "isError": true
        }))
        .unwrap();
        assert!(output("mcp:t/x", err).is_error);
    }
}
