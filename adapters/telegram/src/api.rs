//! Bot API calls with teloxide's own payload and result types, over our reqwest client.
//!
//! Why not `Bot`'s request methods for these: teloxide sleeps 10 s inside every request that is
//! answered with a 5xx (teloxide-core's `DELAY_ON_SERVER_ERROR`) before it returns the error, so
//! one 502 held a chat's outbox and the long poll for 10 s — under 20 % faults, 200 replies took
//! 56–72 s to get out. Our callers already back off (the outbox from about 0.5 s, honouring
//! `retry_after`), so this transport returns at once and says what happened: the payloads,
//! results and error descriptions are still teloxide's, parsed by its types.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use teloxide::requests::Payload;
use teloxide::types::ResponseParameters;
use teloxide::{ApiError, RequestError};

/// A failed call.
#[derive(Debug)]
pub(crate) enum CallError {
    /// What teloxide's types make of the answer: an API error, `retry_after`, a network failure,
    /// a body that is not the Bot API's JSON.
    Request(RequestError),
    /// Telegram's side failed (5xx): the same call may well work in a moment.
    Server { status: u16, description: String },
}

impl From<RequestError> for CallError {
    fn from(e: RequestError) -> Self {
        Self::Request(e)
    }
}

impl CallError {
    /// Only an answer that says the token is wrong (401, or 404 for a malformed one) means the
    /// bot cannot work until the owner fixes it; anything else is worth retrying.
    pub fn is_invalid_token(&self) -> bool {
        matches!(
            self,
            Self::Request(RequestError::Api(ApiError::InvalidToken))
        )
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request(e) => f.write_str(&crate::send::describe(e)),
            Self::Server {
                status,
                description,
            } => write!(f, "Telegram server error {status}: {description}"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

#[derive(serde::Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

impl Api {
    pub fn new(client: reqwest::Client, base: reqwest::Url, token: String) -> Self {
        Self {
            client,
            base,
            token,
        }
    }

    /// Calls `P::NAME` with `payload` as JSON.
    pub async fn call<P>(&self, payload: &P) -> Result<P::Output, CallError>
    where
        P: Payload + Serialize,
        P::Output: DeserializeOwned,
    {
        let mut request = self.json_request(P::NAME, payload)?;
        if let Some(t) = payload.timeout_hint() {
            // A long poll is held open by Telegram for its timeout: allow for it on top.
            request = request.timeout(t + std::time::Duration::from_secs(15));
        }
        Self::send(request).await
    }

    /// Calls a method teloxide has no payload type for yet (`sendMessageDraft`, Bot API 9.3),
    /// with `params` as its JSON.
    pub async fn call_raw<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<T, CallError> {
        Self::send(self.json_request(method, params)?).await
    }

    fn json_request(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<reqwest::RequestBuilder, CallError> {
        let body = serde_json::to_vec(params).map_err(|e| {
            RequestError::Io(Arc::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                e,
            )))
        })?;
        Ok(self
            .client
            .post(self.method_url(method))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body))
    }

    /// Sends `request` and reads the Bot API's answer.
    async fn send<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, CallError> {
        let response = request
            .send()
            .await
            .map_err(|e| RequestError::Network(Arc::new(e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| RequestError::Network(Arc::new(e)))?;
        parse(status.as_u16(), &text)
    }

    /// Calls `method` as `multipart/form-data` (file uploads): text `fields`, and `file` under
    /// the field `file_field`.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        method: &str,
        fields: Vec<(&'static str, String)>,
        file_field: &'static str,
        file: reqwest::multipart::Part,
    ) -> Result<T, CallError> {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k, v);
        }
        form = form.part(file_field, file);
        Self::send(self.client.post(self.method_url(method)).multipart(form)).await
    }

    fn method_url(&self, method: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.push(&format!("bot{}", self.token));
            segments.push(method);
        }
        url
    }
}

/// An answer of the Bot API: `{ok: true, result}` or `{ok: false, description, parameters}`.
fn parse<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, CallError> {
    let invalid = |e: serde_json::Error| RequestError::InvalidJson {
        source: Arc::new(e),
        raw: text.into(),
    };
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        // A proxy's HTML error page in front of Telegram: a server-side failure all the same.
        Err(_) if status >= 500 => {
            return Err(CallError::Server {
                status,
                description: text.chars().take(120).collect(),
            });
        }
        Err(e) => return Err(invalid(e).into()),
    };
    if envelope.ok {
        // Parsed from the text again (not via serde_json::Value): teloxide's `Update` and friends
        // deserialize reliably only from the original JSON.
        #[derive(serde::Deserialize)]
        struct Answer<T> {
            result: T,
        }
        return serde_json::from_str::<Answer<T>>(text)
            .map(|a| a.result)
            .map_err(|e| invalid(e).into());
    }
    match envelope.parameters {
        Some(ResponseParameters::RetryAfter(s)) => {
            return Err(RequestError::RetryAfter(s).into());
        }
        Some(ResponseParameters::MigrateToChatId(id)) => {
            return Err(RequestError::MigrateToChatId(id).into());
        }
        None => {}
    }
    let description = envelope.description.unwrap_or_default();
    if status >= 500 {
        return Err(CallError::Server {
            status,
            description,
        });
    }
    let api: ApiError = serde_json::from_value(serde_json::Value::String(description))
        .unwrap_or_else(|e| ApiError::Unknown(e.to_string()));
    Err(RequestError::Api(api).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::Me;

    #[test]
    fn answers_are_classified() {
        let e = parse::<Me>(
            502,
            r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, CallError::Server { status: 502, .. }), "{e:?}");
        assert!(!e.is_invalid_token());
        let e = parse::<Me>(502, "<html>bad gateway</html>").unwrap_err();
        assert!(matches!(e, CallError::Server { .. }), "{e:?}");
        let e = parse::<Me>(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )
        .unwrap_err();
        assert!(e.is_invalid_token(), "{e:?}");
        let e = parse::<Me>(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(e, CallError::Request(RequestError::RetryAfter(s)) if s.seconds() == 3),
            "{e:?}"
        );
        let e = parse::<Me>(200, "{not json").unwrap_err();
        assert!(matches!(
            e,
            CallError::Request(RequestError::InvalidJson { .. })
        ));
        let ok: bool = parse(200, r#"{"ok":true,"result":true}"#).unwrap();
        assert!(ok);
        // Updates parse through teloxide's own types, including kinds it does not know.
        let updates: Vec<teloxide::types::Update> = parse(
            200,
            r#"{"ok":true,"result":[{"update_id":7,"message":{"message_id":1,"date":1700000000,
              "chat":{"id":5,"type":"private","first_name":"A"},
              "from":{"id":5,"is_bot":false,"first_name":"A"},"text":"hi"}},
              {"update_id":8,"brand_new_kind":{"x":1}}]}"#,
        )
        .unwrap();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[1].id.0, 8);
    }
}
