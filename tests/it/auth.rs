//! Provider credentials: OAuth refresh before expiry and after a 401, once for concurrent turns,
//! rotation persisted; failures name the fix; nothing secret in the log.

use crate::support::gateway::{config_text, free_port};
use crate::support::*;
use serde_json::json;

/// A gateway whose Anthropic provider has no API key in the config, with OAuth tokens imported
/// through `switchboard auth anthropic --oauth FILE` (access token expiring in `expires_in_ms`).
async fn oauth_gateway(model: &FakeModel, expires_in_ms: i64) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config_text(&model.url, port, &dir.path().join("state"), "")
        .replace(r#"apiKey: "sk-ant-test-SECRET", "#, "");
    let mut gw = TestGateway::start_in(dir, port, &text).await;
    gw.stop("TERM").await;
    let file = gw.dir.path().join("oauth.json");
    let expires_at = chrono::Utc::now().timestamp_millis() + expires_in_ms;
    std::fs::write(
        &file,
        json!({ "access_token": "old-access-SECRET", "refresh_token": "first-refresh-SECRET",
                "expires_at": expires_at, "token_url": format!("{}/oauth/token", model.url),
                "client_id": "switchboard-test" })
        .to_string(),
    )
    .unwrap();
    let out = gw
        .cli(&["auth", "anthropic", "--oauth", file.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    gw.restart().await;
    gw
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_tokens_refresh_before_expiry_and_after_a_revocation_once() {
    let model = FakeModel::start().await;
    let gw = oauth_gateway(&model, 30_000).await; // inside the one-minute refresh margin
    let creds = gw.dir.path().join("state/credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    model.on_token(200, json!({ "access_token": "new-1-SECRET", "refresh_token": "rotated-1-SECRET", "expires_in": 3600 }));
    assert_eq!(gw.chat("c", "hello").await, "echo: hello");
    assert_eq!(model.token_calls(), 1);
    assert_eq!(model.requests()[0].auth, "Bearer new-1-SECRET");
    assert!(
        std::fs::read_to_string(&creds)
            .unwrap()
            .contains("rotated-1-SECRET"),
        "rotation persisted"
    );

    // Revoked before expiry: the 401 triggers one refresh, shared by concurrent turns.
    model.reject_auth("Bearer new-1-SECRET");
    model.on_token(200, json!({ "access_token": "new-2-SECRET", "refresh_token": "rotated-2-SECRET", "expires_in": 3600 }));
    let gw = std::sync::Arc::new(gw);
    let (a, b) = tokio::join!(gw.chat("a", "one"), gw.chat("b", "two"));
    assert_eq!((a.as_str(), b.as_str()), ("echo: one", "echo: two"));
    assert_eq!(model.token_calls(), 2, "concurrent turns refresh once");
    assert!(
        std::fs::read_to_string(&creds)
            .unwrap()
            .contains("rotated-2-SECRET")
    );
    let out = gw.cli(&["auth", "status"]).await;
    assert!(
        stdout(&out).contains("anthropic: OAuth, access token valid for"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("SECRET"));
    assert!(!gw.log().contains("SECRET"), "a token leaked into the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_refresh_names_the_command_that_fixes_it() {
    let model = FakeModel::start().await;
    let gw = oauth_gateway(&model, -1000).await; // already expired; the endpoint refuses
    let r = gw.chat("c", "hello").await;
    assert!(r.contains("anthropic: OAuth token refresh failed"), "{r}");
    assert!(r.contains("run `switchboard auth anthropic`"), "{r}");
    assert!(model.requests().is_empty(), "no request with a dead token");
    // The fix works without a restart: the next message uses the new credential.
    let out = gw
        .cli_stdin(&["auth", "anthropic"], "sk-ant-new-SECRET\n")
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(gw.chat("c", "again").await, "echo: again");
    assert_eq!(model.requests().len(), 1);
    assert!(!gw.log().contains("SECRET"), "a key leaked into the log");
}
