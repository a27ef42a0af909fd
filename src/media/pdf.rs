//! The text of a PDF, for providers that are not given PDFs themselves (OpenAI-compatible ones):
//! extracted with `pdf-extract` once, when the file arrives, and kept beside it as `NAME.pdf.txt`
//! so every later request (and a failover to such a provider) reads it back without parsing the
//! PDF again. A PDF it cannot read (scanned pages, encryption, a malformed file) gets a note.

use std::path::{Path, PathBuf};

/// The most text of one PDF given to a model; the rest is named as cut.
pub const MAX_CHARS: usize = 60_000;

fn cache(pdf: &Path) -> PathBuf {
    let mut name = pdf.as_os_str().to_os_string();
    name.push(".txt");
    PathBuf::from(name)
}

/// Extracts the text of the PDF `bytes` stored at `pdf` and keeps it beside the file. Blocking
/// (run it off the runtime's workers). A hostile file can at worst fail: the parser's panics are
/// caught.
pub fn extract(pdf: &Path, bytes: &[u8]) -> Result<String, String> {
    let parsed = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes));
    let text = match parsed {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(format!("cannot read the PDF: {e}")),
        Err(_) => return Err("cannot read the PDF (malformed)".into()),
    };
    let text = tidy(&text);
    if text.trim().is_empty() {
        return Err("the PDF has no text (scanned pages?)".into());
    }
    if let Err(e) = std::fs::write(cache(pdf), &text) {
        tracing::warn!(error = %e, "cannot keep a PDF's text");
    }
    Ok(text)
}

/// The text of the PDF at `pdf`: kept from when it arrived, else extracted now.
pub fn text_of(pdf: &str) -> Result<String, String> {
    let path = Path::new(pdf);
    if let Ok(t) = std::fs::read_to_string(cache(path)) {
        return Ok(t);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("the PDF is no longer available: {e}"))?;
    extract(path, &bytes)
}

/// Extracted text without runs of blank lines and trailing spaces (PDF layout leaves many).
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pdf");
        for junk in [&b"%PDF-1.4 not really"[..], b"", b"\x00\xff\x13garbage"] {
            std::fs::write(&p, junk).unwrap();
            assert!(extract(&p, junk).is_err());
        }
    }

    #[test]
    fn the_text_of_a_real_pdf_is_kept_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("memo.pdf");
        let bytes = crate::media::pdf::testing::pdf_with_text("Quarterly revenue rose 12 percent");
        std::fs::write(&p, &bytes).unwrap();
        let t = extract(&p, &bytes).unwrap();
        assert!(t.contains("Quarterly revenue rose 12 percent"), "{t:?}");
        assert_eq!(text_of(p.to_str().unwrap()).unwrap(), t);
        assert!(dir.path().join("memo.pdf.txt").exists());
    }
}

/// A minimal, valid one-page PDF showing `line` in Helvetica (for tests and benchmarks).
#[doc(hidden)]
pub mod testing {
    pub fn pdf_with_text(line: &str) -> Vec<u8> {
        let stream = format!("BT /F1 18 Tf 72 720 Td ({line}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
            format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for off in offsets {
            out.extend(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }
}
