//! Whisper models on disk: the names we know (with the size and SHA-256 of the files the
//! whisper.cpp project publishes, pinned here so a download is checked against what we expect,
//! not against what the server says), fetching one into the state dir's `models/`, and listing
//! what is installed.
//!
//! A download goes to `ggml-NAME.bin.part` and is renamed into place only once its checksum is
//! right, so a half-written or tampered file never looks installed. A cut connection resumes with
//! an HTTP `Range` request, in the same run (a few retries) or in the next run (the `.part` file
//! stays). Progress: an indicatif bar on a terminal, a line every 10% otherwise (logs, CI).

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where whisper.cpp publishes its ggml models; `--base-url` or `SWITCHBOARD_MODELS_URL` point
/// elsewhere (a mirror, a local server).
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// A model the whisper.cpp project publishes, with its pinned size and checksum.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Known {
    pub name: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
}

impl Known {
    pub fn file_name(&self) -> String {
        format!("ggml-{}.bin", self.name)
    }
}

/// Sizes and SHA-256 of the files at [`DEFAULT_BASE_URL`] (the Hugging Face LFS object ids).
pub const CATALOGUE: &[Known] = &[
    Known {
        name: "tiny.en",
        bytes: 77_704_715,
        sha256: "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
    },
    Known {
        name: "tiny",
        bytes: 77_691_713,
        sha256: "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21",
    },
    Known {
        name: "base.en",
        bytes: 147_964_211,
        sha256: "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002",
    },
    Known {
        name: "base",
        bytes: 147_951_465,
        sha256: "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe",
    },
    Known {
        name: "small.en",
        bytes: 487_614_201,
        sha256: "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d",
    },
    Known {
        name: "small",
        bytes: 487_601_967,
        sha256: "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b",
    },
];

/// How many times one run picks a cut download up again before giving up (the `.part` file
/// stays for the next run either way).
const ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("unknown model `{name}`{hint}; known: {known}")]
    Unknown {
        name: String,
        hint: String,
        known: String,
    },
    #[error("`{0}` is not a SHA-256 (64 hex digits)")]
    BadChecksum(String),
    #[error(
        "{file}: checksum mismatch (expected sha256 {expected}, got {got}); the download was discarded"
    )]
    Mismatch {
        file: String,
        expected: String,
        got: String,
    },
    #[error("downloading {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelsError + '_ {
    move |source| ModelsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Finds a catalogue entry from `base.en`, `ggml-base.en` or `ggml-base.en.bin`.
pub fn lookup(name: &str) -> Result<&'static Known, ModelsError> {
    let bare = name
        .trim()
        .trim_start_matches("ggml-")
        .trim_end_matches(".bin");
    if let Some(k) = CATALOGUE.iter().find(|k| k.name == bare) {
        return Ok(k);
    }
    let closest = CATALOGUE
        .iter()
        .map(|k| (strsim::levenshtein(k.name, bare), k.name))
        .min();
    let hint = match closest {
        Some((d, n)) if d <= 2 => format!(" (did you mean `{n}`?)"),
        _ => String::new(),
    };
    Err(ModelsError::Unknown {
        name: name.to_string(),
        hint,
        known: CATALOGUE
            .iter()
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// What a download should fetch and check.
pub struct Request<'a> {
    pub model: &'static Known,
    pub base_url: &'a str,
    pub dir: &'a Path,
    /// Check against this instead of the pinned checksum (a mirror of your own conversion).
    pub sha256: Option<&'a str>,
}

/// What a finished download did.
#[derive(Debug)]
pub struct Installed {
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes taken from an earlier, interrupted run.
    pub resumed_from: u64,
    /// It was there already, with the right checksum: nothing was fetched.
    pub already: bool,
}

/// Downloads a model into `dir`, resuming a `.part` file left by an earlier run, and installs it
/// atomically once its SHA-256 matches.
pub async fn download(req: &Request<'_>) -> Result<Installed, ModelsError> {
    let expected = match req.sha256 {
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => s.to_lowercase(),
        Some(s) => return Err(ModelsError::BadChecksum(s.to_string())),
        None => req.model.sha256.to_string(),
    };
    let file = req.model.file_name();
    let dest = req.dir.join(&file);
    let part = req.dir.join(format!("{file}.part"));
    std::fs::create_dir_all(req.dir).map_err(io(req.dir))?;
    if dest.exists() {
        let (len, got) = hash_file(&dest)?;
        if got == expected {
            return Ok(Installed {
                path: dest,
                bytes: len,
                resumed_from: 0,
                already: true,
            });
        }
        // A different file under that name (an older model, a broken copy): fetch and replace.
    }
    let url = format!("{}/{file}", req.base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| http(&url, &e))?;

    // Pick up what an earlier run left: its bytes go through the hash first.
    let (mut have, mut hasher) = if part.exists() {
        hash_prefix(&part)?
    } else {
        (0, Sha256::new())
    };
    let resumed_from = have;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .map_err(io(&part))?;
    let progress = Progress::new(&file);
    let mut attempt = 0;
    let total = loop {
        attempt += 1;
        match fetch_from(
            &client,
            &url,
            &part,
            &mut out,
            &mut have,
            &mut hasher,
            &progress,
        )
        .await
        {
            Ok(total) => break total,
            Err(e) if attempt < ATTEMPTS && e.retryable => {
                progress.note(&format!(
                    "connection lost at {} ({}); resuming",
                    mb(have),
                    e.error
                ));
                tokio::time::sleep(Duration::from_millis(300 * 2u64.pow(attempt - 1))).await;
            }
            Err(e) => {
                if have == 0 {
                    // Nothing worth resuming: leave no empty `.part` behind.
                    drop(out);
                    let _ = std::fs::remove_file(&part);
                }
                return Err(e.error);
            }
        }
    };
    progress.finish();
    out.sync_all().map_err(io(&part))?;
    drop(out);
    let got = hex(&hasher.finalize());
    if got != expected {
        let _ = std::fs::remove_file(&part);
        return Err(ModelsError::Mismatch {
            file,
            expected,
            got,
        });
    }
    std::fs::rename(&part, &dest).map_err(io(&dest))?;
    if let Ok(d) = std::fs::File::open(req.dir) {
        let _ = d.sync_all();
    }
    Ok(Installed {
        path: dest,
        bytes: total,
        resumed_from,
        already: false,
    })
}

struct Failure {
    error: ModelsError,
    retryable: bool,
}

fn http(url: &str, e: &dyn std::fmt::Display) -> ModelsError {
    ModelsError::Http {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

/// One request from byte `have` on, appended to `out`; returns the file's full length.
async fn fetch_from(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    out: &mut std::fs::File,
    have: &mut u64,
    hasher: &mut Sha256,
    progress: &Progress,
) -> Result<u64, Failure> {
    let net = |e: reqwest::Error| Failure {
        error: http(url, &e),
        retryable: true,
    };
    let mut rq = client.get(url);
    if *have > 0 {
        rq = rq.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut resp = rq.send().await.map_err(net)?;
    let status = resp.status();
    let total = match status.as_u16() {
        206 => content_range_total(&resp).unwrap_or(*have + resp.content_length().unwrap_or(0)),
        200 => {
            if *have > 0 {
                // The server ignored the range: start over rather than append a second copy.
                out.set_len(0).map_err(|e| Failure {
                    error: io(part)(e),
                    retryable: false,
                })?;
                *have = 0;
                *hasher = Sha256::new();
            }
            resp.content_length().unwrap_or(0)
        }
        // Asked past the end: what we have is the whole file (the checksum decides).
        416 if *have > 0 => return Ok(*have),
        s => {
            return Err(Failure {
                error: http(url, &format!("HTTP {s}")),
                retryable: s == 429 || s >= 500,
            });
        }
    };
    progress.start(total, *have);
    while let Some(chunk) = resp.chunk().await.map_err(net)? {
        out.write_all(&chunk).map_err(|e| Failure {
            error: io(part)(e),
            retryable: false,
        })?;
        hasher.update(&chunk);
        *have += chunk.len() as u64;
        progress.at(*have);
    }
    if total > 0 && *have < total {
        return Err(Failure {
            error: http(
                url,
                &format!("the connection closed at {have} of {total} bytes"),
            ),
            retryable: true,
        });
    }
    Ok(*have)
}

/// `Content-Range: bytes 100-199/200` → 200.
fn content_range_total(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

fn hash_prefix(path: &Path) -> Result<(u64, Sha256), ModelsError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            return Ok((len, hasher));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

fn hash_file(path: &Path) -> Result<(u64, String), ModelsError> {
    let (len, h) = hash_prefix(path)?;
    Ok((len, hex(&h.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A progress bar on a terminal; a line at every 10% elsewhere.
struct Progress {
    file: String,
    bar: Option<ProgressBar>,
    state: parking_lot::Mutex<(u64, u64)>,
}

impl Progress {
    fn new(file: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(file.to_string());
            b
        });
        Progress {
            file: file.to_string(),
            bar,
            state: parking_lot::Mutex::new((0, 0)),
        }
    }

    fn start(&self, total: u64, have: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(have);
        } else if have > 0 {
            eprintln!("{}: resuming at {} of {}", self.file, mb(have), mb(total));
        }
        let mut s = self.state.lock();
        s.0 = total;
        s.1 = s.1.max((have * 10).checked_div(total).unwrap_or(0));
    }

    fn at(&self, have: u64) {
        if let Some(b) = &self.bar {
            b.set_position(have);
            return;
        }
        let mut s = self.state.lock();
        let (total, last) = *s;
        if total == 0 {
            return;
        }
        let tenth = (have * 10 / total).min(10);
        if tenth > last {
            s.1 = tenth;
            eprintln!(
                "{}: {:>3}% ({} of {})",
                self.file,
                tenth * 10,
                mb(have),
                mb(total)
            );
        }
    }

    fn note(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(format!("{}: {msg}", self.file)),
            None => eprintln!("{}: {msg}", self.file),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// A model file in the models directory.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub file: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// The catalogue name whose published size this file has.
    pub known_as: Option<&'static str>,
    /// An interrupted download (`.part`); `switchboard models download NAME` resumes it.
    pub partial: bool,
}

/// What is in `dir` (nothing, when it does not exist yet).
pub fn list(dir: &Path) -> Result<Vec<Listed>, ModelsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let file = entry.file_name().to_string_lossy().to_string();
        let partial = file.ends_with(".bin.part");
        if !(file.ends_with(".bin") || partial) {
            continue;
        }
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let stem = file.trim_end_matches(".part");
        let known_as = CATALOGUE
            .iter()
            .find(|k| k.file_name() == stem && (partial || k.bytes == bytes))
            .map(|k| k.name);
        out.push(Listed {
            path: entry.path(),
            file,
            bytes,
            known_as,
            partial,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_or_without_the_file_decoration() {
        assert_eq!(lookup("base.en").unwrap().name, "base.en");
        assert_eq!(lookup("ggml-small.bin").unwrap().name, "small");
        let e = lookup("bas.en").unwrap_err().to_string();
        assert!(e.contains("did you mean `base.en`"), "{e}");
        assert!(e.contains("tiny.en, tiny, base.en"), "{e}");
    }

    #[test]
    fn pins_are_well_formed() {
        for k in CATALOGUE {
            assert_eq!(k.sha256.len(), 64, "{}", k.name);
            assert!(k.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(k.bytes > 70_000_000, "{}", k.name);
        }
    }

    #[test]
    fn listing_a_missing_dir_is_empty_and_partials_are_marked() {
        let d = tempfile::tempdir().unwrap();
        assert!(list(&d.path().join("nope")).unwrap().is_empty());
        std::fs::write(d.path().join("ggml-base.en.bin.part"), b"abc").unwrap();
        std::fs::write(d.path().join("ggml-mine.bin"), b"abcd").unwrap();
        std::fs::write(d.path().join("notes.txt"), b"x").unwrap();
        let l = list(d.path()).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l[0].partial && l[0].known_as == Some("base.en"));
        assert!(!l[1].partial && l[1].known_as.is_none() && l[1].bytes == 4);
    }
}
