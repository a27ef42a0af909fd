//! `switchboard models download|list` against a local stand-in for the whisper.cpp model host:
//! the pinned checksum is enforced, progress is shown, a cut connection is resumed (within a run
//! and across runs), and only a verified file is ever installed.

use crate::support::fake_model_host::{FakeModelHost, model_bytes};
use crate::support::gateway::run_cli;
use crate::support::{stderr, stdout};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const FILE: &str = "ggml-tiny.en.bin";
const LEN: usize = 3_000_000;

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    models: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json5");
    let text = crate::support::gateway::config_text("http://127.0.0.1:9", 0, dir.path(), "");
    std::fs::write(&cfg, text).unwrap();
    let models = dir.path().join("models");
    Setup {
        _dir: dir,
        cfg,
        models,
    }
}

async fn download(cfg: &Path, host: &FakeModelHost, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["models", "download", "tiny.en", "--base-url", &host.url];
    args.extend_from_slice(extra);
    run_cli(cfg, &args, "").await
}

#[tokio::test]
async fn a_file_that_does_not_match_the_pinned_checksum_is_refused_and_not_installed() {
    let s = setup();
    let host = FakeModelHost::start().await;
    host.put(FILE, model_bytes(LEN));
    let out = download(&s.cfg, &host, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("checksum mismatch"), "{err}");
    // The pinned checksum of the published tiny.en, not whatever the server sent.
    assert!(
        err.contains("921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f"),
        "{err}"
    );
    assert!(
        !s.models.join(FILE).exists(),
        "an unverified file was installed"
    );
    assert!(!s.models.join(format!("{FILE}.part")).exists());
    let list = stdout(&run_cli(&s.cfg, &["models", "list"], "").await);
    assert!(list.contains("(none)"), "{list}");
}

#[tokio::test]
async fn a_cut_connection_is_resumed_with_a_range_request_and_progress_is_shown() {
    let s = setup();
    let host = FakeModelHost::start().await;
    let bytes = model_bytes(LEN);
    host.put(FILE, bytes.clone());
    host.cut_next_after(1_000_000);
    let out = download(&s.cfg, &host, &["--sha256", &sha(&bytes)]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("installed"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("resuming"), "{err}");
    assert!(err.contains("100% (3.0 MB of 3.0 MB)"), "{err}");
    let log = host.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].range_from, None);
    let from = log[1]
        .range_from
        .expect("the second request asks for the rest");
    assert!(from > 0 && from <= 1_000_000, "{log:?}");
    assert_eq!(log[1].sent, LEN as u64 - from, "only the rest was fetched");
    assert_eq!(std::fs::read(s.models.join(FILE)).unwrap(), bytes);
    assert!(!s.models.join(format!("{FILE}.part")).exists());
    // Installed and verified: a second run fetches nothing.
    let again = download(&s.cfg, &host, &["--sha256", &sha(&bytes)]).await;
    assert!(
        stdout(&again).contains("already installed"),
        "{}",
        stdout(&again)
    );
    assert_eq!(host.log().len(), 2);
    let list = stdout(&run_cli(&s.cfg, &["models", "list"], "").await);
    assert!(list.contains(FILE) && list.contains("3.0 MB"), "{list}");
}

#[tokio::test]
async fn a_partial_file_left_by_an_earlier_run_is_continued_not_refetched() {
    let s = setup();
    let host = FakeModelHost::start().await;
    let bytes = model_bytes(LEN);
    host.put(FILE, bytes.clone());
    std::fs::create_dir_all(&s.models).unwrap();
    std::fs::write(s.models.join(format!("{FILE}.part")), &bytes[..2_000_000]).unwrap();
    let list = stdout(&run_cli(&s.cfg, &["models", "list"], "").await);
    assert!(
        list.contains("interrupted download; `switchboard models download tiny.en` resumes it"),
        "{list}"
    );
    let out = download(&s.cfg, &host, &["--sha256", &sha(&bytes)]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("resumed from 2.0 MB"),
        "{}",
        stdout(&out)
    );
    let log = host.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].range_from, Some(2_000_000));
    assert_eq!(log[0].sent, 1_000_000);
    assert_eq!(std::fs::read(s.models.join(FILE)).unwrap(), bytes);
}

#[tokio::test]
async fn unknown_names_and_bad_checksums_are_usage_errors() {
    let s = setup();
    let out = run_cli(&s.cfg, &["models", "download", "bas.en"], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `base.en`"),
        "{}",
        stderr(&out)
    );
    let host = FakeModelHost::start().await;
    let out = download(&s.cfg, &host, &["--sha256", "abc"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a SHA-256"), "{}", stderr(&out));
    assert!(host.log().is_empty());
    // A host without the file: a clear error naming the URL.
    let out = download(&s.cfg, &host, &[]).await;
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    assert!(
        !s.models.join(format!("{FILE}.part")).exists() || {
            std::fs::metadata(s.models.join(format!("{FILE}.part")))
                .unwrap()
                .len()
                == 0
        }
    );
}
