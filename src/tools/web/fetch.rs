//! `web_fetch`: one page as text the model can read. HTML becomes Markdown-ish text (html2text:
//! headings, lists, links as footnotes, no scripts or styles); plain text and JSON pass through.
//! The body is read up to `tools.web.maxBytes`, decoded by its charset (header, BOM or `<meta>`),
//! and the request is bounded in time and in redirects.

use crate::tools::untrusted;
use reqwest::header::CONTENT_TYPE;

/// Characters of text given to the model by default (the model may ask for fewer or more, up to
/// [`MAX_CHARS`]).
pub const DEFAULT_CHARS: usize = 40_000;
pub const MAX_CHARS: usize = 200_000;

pub struct Page {
    pub url: String,
    pub status: u16,
    pub content_type: String,
    pub text: String,
    /// The body was longer than `maxBytes` and was cut.
    pub cut_bytes: bool,
}

/// Fetches `url` with `client` (which carries the guard, redirect policy and timeout).
pub async fn fetch(client: &reqwest::Client, url: &str, max_bytes: usize) -> Result<Page, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs can be fetched, not `{}`",
            parsed.scheme()
        ));
    }
    let mut resp = client
        .get(parsed)
        .header(
            reqwest::header::ACCEPT,
            "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5",
        )
        .send()
        .await
        .map_err(describe)?;
    let status = resp.status().as_u16();
    let final_url = resp.url().to_string();
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut body = Vec::new();
    let mut cut_bytes = false;
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        let room = max_bytes - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            cut_bytes = chunk.len() > room || resp.chunk().await.ok().flatten().is_some();
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let looks_html = mime.is_empty() && sniff_html(&body);
    let text = if mime == "text/html" || mime == "application/xhtml+xml" || looks_html {
        let decoded = decode(&body, &content_type, true);
        html2text::config::plain()
            .link_footnotes(true)
            .no_link_wrapping()
            .string_from_read(decoded.as_bytes(), 120)
            .map_err(|e| format!("cannot read the page's HTML: {e}"))?
    } else if mime == "application/json" || mime.ends_with("+json") {
        let decoded = decode(&body, &content_type, false);
        match serde_json::from_str::<serde_json::Value>(&decoded) {
            Ok(v) if !cut_bytes => serde_json::to_string_pretty(&v).unwrap_or(decoded),
            _ => decoded,
        }
    } else if mime.starts_with("text/")
        || mime.is_empty()
        || mime == "application/xml"
        || mime.ends_with("+xml")
        || mime == "application/javascript"
    {
        decode(&body, &content_type, false)
    } else {
        return Err(format!(
            "{final_url} is `{mime}` ({} bytes), not a page or text web_fetch can read",
            body.len()
        ));
    };
    Ok(Page {
        url: final_url,
        status,
        content_type: mime,
        text,
        cut_bytes,
    })
}

/// A request error as the model should read it: the guard's refusal, a timeout, too many
/// redirects, or the connection failure (never the URL's credentials: reqwest strips them).
fn describe(e: reqwest::Error) -> String {
    use std::error::Error;
    let mut src: Option<&dyn Error> = e.source();
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<super::guard::Refused>() {
            return r.0.clone();
        }
        if let Some(r) = s.downcast_ref::<super::RedirectRefused>() {
            return r.0.clone();
        }
        src = s.source();
    }
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_redirect() {
        "too many redirects".into()
    } else if e.is_connect() {
        format!("cannot connect: {}", e.without_url())
    } else {
        e.without_url().to_string()
    }
}

fn sniff_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// Decodes `body` by its BOM, the charset in `content_type`, a `<meta>` charset (HTML), or UTF-8.
fn decode(body: &[u8], content_type: &str, html: bool) -> String {
    let label = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("charset="))
        .next()
        .map(|c| c.trim_matches('"').to_string())
        .or_else(|| html.then(|| meta_charset(body)).flatten());
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    // `decode` honours a BOM over the label, as browsers do.
    let (text, _, _) = encoding.decode(body);
    text.into_owned()
}

/// `<meta charset="…">` or `<meta http-equiv="Content-Type" content="…; charset=…">` in the
/// first 2 KB.
fn meta_charset(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
    let at = head.find("charset=")?;
    let rest = head[at + 8..].trim_start_matches(['"', '\'']);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_string())
}

/// The tool's answer: where the page came from, then its text within `max_chars`.
pub fn render(page: &Page, max_chars: usize) -> String {
    let mut text = page.text.clone();
    let mut notes = Vec::new();
    if let Some(total) = crate::tools::cut_chars(&mut text, max_chars) {
        notes.push(format!(
            "text truncated: {max_chars} of {total} characters shown"
        ));
    }
    if page.cut_bytes {
        notes.push("the page was larger than tools.web.maxBytes and was cut".into());
    }
    let mut head = format!(
        "URL: {}\nStatus: {}\nContent-Type: {}\n",
        page.url, page.status, page.content_type
    );
    if !notes.is_empty() {
        head.push_str(&format!("Note: {}\n", notes.join("; ")));
    }
    untrusted(
        &format!("web_fetch {}", page.url),
        &format!("{head}\n{text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_from_header_meta_and_bom() {
        let latin1 = b"caf\xe9";
        assert_eq!(
            decode(latin1, "text/plain; charset=ISO-8859-1", false),
            "café"
        );
        let html = b"<html><head><meta charset=\"windows-1252\"></head><body>caf\xe9</body></html>";
        assert!(decode(html, "text/html", true).contains("café"));
        let bom = b"\xef\xbb\xbfcaf\xc3\xa9";
        assert_eq!(decode(bom, "text/plain; charset=ISO-8859-1", false), "café");
        assert_eq!(decode("café".as_bytes(), "", false), "café");
    }
}
