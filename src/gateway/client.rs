//! The CLI's client for the gateway's HTTP API: a short connect timeout, and when the gateway
//! cannot be reached, a message that says what was tried and what to do.

use super::api::*;
use crate::config::Config;
use crate::store::{SessionRow, TaskRow};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}", unreachable_help(url, reason, bind))]
    Unreachable {
        url: String,
        reason: String,
        bind: String,
    },
    #[error("{0}")]
    Api(String),
}

fn unreachable_help(url: &str, reason: &str, bind: &str) -> String {
    let mut s = format!(
        "cannot reach the gateway at {url} ({reason}).\n\
         - Is it running? Start it with `switchboard gateway`."
    );
    if bind == "loopback" {
        s.push_str(
            "\n- It listens on 127.0.0.1 only (gateway.bind = \"loopback\"). If this command runs in another \
             network namespace or container than the gateway, run `switchboard config set gateway.bind lan`, \
             set gateway.token, restart the gateway, and point this command at it with \
             SWITCHBOARD_GATEWAY_URL=http://HOST:PORT.",
        );
    } else {
        s.push_str("\n- Check gateway.port and any firewall between here and the gateway.");
    }
    s
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    bind: String,
}

impl Client {
    /// Connects where the config says the gateway listens, or to `SWITCHBOARD_GATEWAY_URL`.
    pub fn from_config(c: &Config) -> Client {
        let base = std::env::var("SWITCHBOARD_GATEWAY_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                let ip = c.listen_ip();
                let ip = if ip.is_unspecified() {
                    "127.0.0.1".to_string()
                } else if ip.is_ipv6() {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("http://{ip}:{}", c.gateway.port)
            });
        Client {
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_string(),
            token: c.gateway.token.clone(),
            bind: c.gateway.bind.clone(),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let mut req = req.timeout(timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("gateway answered {status}"));
            return Err(ClientError::Api(msg));
        }
        serde_json::from_str(&body)
            .map_err(|e| ClientError::Api(format!("unexpected answer from the gateway: {e}")))
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        let reason = if e.is_connect() {
            "connection refused or unreachable".to_string()
        } else if e.is_timeout() {
            "timed out".to_string()
        } else {
            e.without_url_string()
        };
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
            bind: self.bind.clone(),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        self.call(self.http.get(format!("{}{path}", self.base)), timeout)
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        self.call(
            self.http.post(format!("{}{path}", self.base)).json(body),
            timeout,
        )
        .await
    }

    pub async fn status(&self) -> Result<StatusReport, ClientError> {
        self.get("/v1/status", Duration::from_secs(5)).await
    }

    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ClientError> {
        self.post("/v1/chat", req, Duration::from_secs(3600)).await
    }

    pub async fn poll(
        &self,
        chat: &str,
        after: u64,
        wait_secs: u64,
    ) -> Result<Vec<crate::channels::local::LocalMessage>, ClientError> {
        self.get(
            &format!("/v1/local/{chat}/messages?after={after}&wait={wait_secs}"),
            Duration::from_secs(wait_secs + 10),
        )
        .await
    }

    pub async fn send(
        &self,
        to: &str,
        text: &str,
        file: Option<&str>,
    ) -> Result<Done, ClientError> {
        let body = SendRequest {
            to: to.into(),
            text: text.into(),
            file: file.map(str::to_string),
        };
        self.post("/v1/send", &body, Duration::from_secs(10)).await
    }

    pub async fn sessions(&self) -> Result<Vec<SessionRow>, ClientError> {
        self.get("/v1/sessions", Duration::from_secs(10)).await
    }

    pub async fn reset_sessions(&self, key: Option<String>) -> Result<Done, ClientError> {
        self.post(
            "/v1/sessions/reset",
            &ResetRequest { key },
            Duration::from_secs(10),
        )
        .await
    }

    pub async fn tasks(&self) -> Result<Vec<TaskRow>, ClientError> {
        self.get("/v1/tasks", Duration::from_secs(10)).await
    }

    pub async fn cron_run(&self, id: i64) -> Result<Done, ClientError> {
        self.post(
            &format!("/v1/cron/{id}/run"),
            &serde_json::json!({}),
            Duration::from_secs(10),
        )
        .await
    }

    /// Tells a running gateway that the CLI changed cron jobs in the database.
    pub async fn cron_changed(&self) -> Result<Done, ClientError> {
        self.post(
            "/v1/cron/changed",
            &serde_json::json!({}),
            Duration::from_secs(2),
        )
        .await
    }

    pub async fn approvals(
        &self,
        all: bool,
    ) -> Result<Vec<crate::store::ApprovalRow>, ClientError> {
        self.get(&format!("/v1/approvals?all={all}"), Duration::from_secs(10))
            .await
    }

    /// `answer`: `approve`, `approve-session` or `deny`.
    pub async fn approval_answer(&self, id: i64, answer: &str) -> Result<Done, ClientError> {
        self.post(
            &format!("/v1/approvals/{id}/{answer}"),
            &serde_json::json!({}),
            Duration::from_secs(10),
        )
        .await
    }

    pub async fn mcp_list(&self) -> Result<Vec<crate::tools::mcp::ServerInfo>, ClientError> {
        self.get("/v1/mcp", Duration::from_secs(10)).await
    }

    pub async fn mcp_test(&self, name: &str) -> Result<crate::tools::mcp::ServerInfo, ClientError> {
        self.post(
            &format!("/v1/mcp/{name}/test"),
            &serde_json::json!({}),
            Duration::from_secs(40),
        )
        .await
    }

    pub async fn cancel_task(&self, id: i64) -> Result<Done, ClientError> {
        self.post(
            &format!("/v1/tasks/{id}/cancel"),
            &serde_json::json!({}),
            Duration::from_secs(10),
        )
        .await
    }
}

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_string(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(u.as_str(), "");
        }
        s
    }
}
