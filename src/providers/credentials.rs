//! Credentials for model providers: an API key, or OAuth tokens that refresh themselves.
//!
//! Stored in `<stateDir>/credentials.json` with 0600 permissions (never logged; `auth status`
//! shows only their kind and expiry). OAuth access tokens are refreshed a minute before they expire
//! and also after a `401` (a revoked token), under a lock so concurrent turns refresh once; a
//! rotated refresh token is written to disk (atomically) before the new access token is used, so a
//! crash cannot lose the only valid refresh token.

use super::ProviderError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const REFRESH_MARGIN_MS: i64 = 60_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Stored {
    ApiKey {
        key: String,
    },
    Oauth {
        access_token: String,
        refresh_token: String,
        /// Milliseconds since the epoch.
        expires_at: i64,
        token_url: String,
        client_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("credentials.json")
}

pub fn load_all(state_dir: &Path) -> Result<BTreeMap<String, Stored>, CredentialError> {
    let p = path(state_dir);
    match std::fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| CredentialError::Read {
            path: p.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(CredentialError::Read {
            path: p.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Stores (or replaces) `provider`'s credential, atomically and readable by the owner only.
pub fn save(state_dir: &Path, provider: &str, cred: Stored) -> Result<(), CredentialError> {
    let mut all = load_all(state_dir)?;
    all.insert(provider.to_string(), cred);
    write_all(state_dir, &all)
}

fn write_all(state_dir: &Path, all: &BTreeMap<String, Stored>) -> Result<(), CredentialError> {
    let p = path(state_dir);
    let err = |source| CredentialError::Write {
        path: p.display().to_string(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(err)?;
    let tmp = state_dir.join(format!(".credentials.json.tmp-{}", std::process::id()));
    let text = serde_json::to_string_pretty(all).unwrap_or_default();
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &p).map_err(err)
}

/// How a provider authenticates.
#[derive(Clone)]
pub enum Credential {
    None,
    ApiKey(String),
    OAuth(Arc<OAuth>),
}

impl Credential {
    fn from_stored(name: &str, state_dir: &Path, client: &reqwest::Client) -> Credential {
        match load_all(state_dir) {
            Ok(all) => match all.get(name).cloned() {
                Some(Stored::ApiKey { key }) => Credential::ApiKey(key),
                Some(oauth @ Stored::Oauth { .. }) => Credential::OAuth(Arc::new(OAuth {
                    provider: name.to_string(),
                    state_dir: state_dir.to_path_buf(),
                    client: client.clone(),
                    tokens: tokio::sync::Mutex::new(oauth),
                })),
                None => Credential::None,
            },
            Err(e) => {
                tracing::error!(provider = name, error = %e, "cannot read stored credentials");
                Credential::None
            }
        }
    }
}

/// Where a provider's credential comes from: the config's `apiKey` first, else what
/// `switchboard auth` stored. The stored file is re-read when it changes (one `stat` a call), so
/// `switchboard auth` takes effect on the next message, without a restart.
#[derive(Clone)]
pub struct CredentialSource(Arc<Source>);

struct Source {
    name: String,
    config_key: Option<String>,
    state_dir: PathBuf,
    client: reqwest::Client,
    /// The file's modification time when last read, and what it held.
    loaded: parking_lot::Mutex<(Option<std::time::SystemTime>, Credential)>,
}

impl CredentialSource {
    pub fn for_provider(
        name: &str,
        config_key: Option<&str>,
        state_dir: &Path,
        client: reqwest::Client,
    ) -> CredentialSource {
        let src = Source {
            name: name.to_string(),
            config_key: config_key.map(str::to_string),
            state_dir: state_dir.to_path_buf(),
            client,
            loaded: parking_lot::Mutex::new((None, Credential::None)),
        };
        let src = CredentialSource(Arc::new(src));
        src.current();
        src
    }

    /// The credential to use now.
    pub fn current(&self) -> Credential {
        let s = &self.0;
        if let Some(k) = &s.config_key {
            return Credential::ApiKey(k.clone());
        }
        let mtime = std::fs::metadata(path(&s.state_dir))
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = s.loaded.lock();
        if loaded.0 != mtime {
            let fresh = Credential::from_stored(&s.name, &s.state_dir, &s.client);
            // Our own refresh rewrote the file: keep the live token holder (and its lock).
            let same = matches!((&loaded.1, &fresh), (Credential::OAuth(a), Credential::OAuth(b))
                if a.same_tokens(b));
            if !same {
                if loaded.0.is_some() {
                    tracing::info!(provider = %s.name, "stored credentials changed; using them");
                }
                loaded.1 = fresh;
            }
            loaded.0 = mtime;
        }
        loaded.1.clone()
    }
}

pub struct OAuth {
    provider: String,
    state_dir: PathBuf,
    client: reqwest::Client,
    tokens: tokio::sync::Mutex<Stored>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl OAuth {
    /// Whether both hold the same tokens (false while either is busy refreshing).
    fn same_tokens(&self, other: &OAuth) -> bool {
        match (self.tokens.try_lock(), other.tokens.try_lock()) {
            (Ok(a), Ok(b)) => match (&*a, &*b) {
                (
                    Stored::Oauth {
                        access_token: x,
                        refresh_token: rx,
                        ..
                    },
                    Stored::Oauth {
                        access_token: y,
                        refresh_token: ry,
                        ..
                    },
                ) => x == y && rx == ry,
                _ => false,
            },
            _ => false,
        }
    }

    fn failed(&self, why: &str) -> ProviderError {
        ProviderError::Auth(format!(
            "OAuth token refresh failed ({why}) — run `switchboard auth {}`",
            self.provider
        ))
    }

    /// A valid access token, refreshed first if it expires within a minute.
    pub async fn access_token(&self) -> Result<String, ProviderError> {
        let mut tokens = self.tokens.lock().await;
        if let Stored::Oauth {
            access_token,
            expires_at,
            ..
        } = &*tokens
            && *expires_at - REFRESH_MARGIN_MS > crate::store::now_ms()
        {
            return Ok(access_token.clone());
        }
        self.refresh(&mut tokens).await
    }

    /// After a 401 with `rejected`: refresh, unless another turn already did.
    pub async fn after_unauthorized(&self, rejected: &str) -> Result<String, ProviderError> {
        let mut tokens = self.tokens.lock().await;
        if let Stored::Oauth { access_token, .. } = &*tokens
            && access_token != rejected
        {
            return Ok(access_token.clone());
        }
        self.refresh(&mut tokens).await
    }

    async fn refresh(&self, tokens: &mut Stored) -> Result<String, ProviderError> {
        let Stored::Oauth {
            refresh_token,
            token_url,
            client_id,
            ..
        } = &*tokens
        else {
            return Err(self.failed("no OAuth credentials"));
        };
        tracing::info!(provider = %self.provider, "refreshing the OAuth access token");
        let resp = self
            .client
            .post(token_url)
            .timeout(Duration::from_secs(30))
            .json(&serde_json::json!({
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
            }))
            .send()
            .await
            .map_err(|e| self.failed(&e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.failed(&format!("the token endpoint answered {status}")));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|_| self.failed("unreadable token response"))?;
        let new = Stored::Oauth {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.unwrap_or_else(|| refresh_token.clone()),
            expires_at: crate::store::now_ms() + t.expires_in.unwrap_or(3600) * 1000,
            token_url: token_url.clone(),
            client_id: client_id.clone(),
        };
        // Persist (a rotated refresh token especially) before anything uses the new token.
        save(&self.state_dir, &self.provider, new.clone())
            .map_err(|e| self.failed(&e.to_string()))?;
        *tokens = new;
        Ok(t.access_token)
    }
}

/// One line per stored or configured credential, without secrets, for `auth status`.
pub fn status(config: &crate::config::Config) -> Result<Vec<String>, CredentialError> {
    let stored = load_all(&config.state_dir())?;
    let now = crate::store::now_ms();
    Ok(config
        .providers
        .iter()
        .map(|(name, p)| {
            let state = if p.api_key.is_some() {
                "API key (from the config)".to_string()
            } else {
                match stored.get(name) {
                    Some(Stored::ApiKey { .. }) => "API key (stored by `switchboard auth`)".into(),
                    Some(Stored::Oauth { expires_at, .. }) if *expires_at > now => format!(
                        "OAuth, access token valid for {} more minutes (refreshes itself)",
                        (expires_at - now) / 60_000
                    ),
                    Some(Stored::Oauth { .. }) => {
                        "OAuth, access token expired (refreshed on next use)".into()
                    }
                    None => "no credentials".into(),
                }
            };
            format!("{name}: {state}")
        })
        .collect())
}
