//! The token resource: fetching a customer's business token with the system user token, and
//! asking Graph about a token's health (`debug_token`) with the app access token.
//!
//! Both calls send their access token in an `Authorization: Bearer` header with its
//! `appsecret_proof`; the token under inspection (`input_token`) can only travel as a query
//! parameter. Never stores or logs a token.

use secrecy::{ExposeSecret, SecretString};
use tracing::{Instrument, field::Empty};
use wa_ids::{AppId, BusinessId};

use crate::{
    GraphClient, GraphError, Result,
    client::{Call, proof},
    reply::{business_token, token_health},
};

/// What `debug_token` says about a token. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHealth {
    /// Graph still accepts the token.
    pub is_valid: bool,
    /// When it expires, unix seconds; `0` when it never does; `None` when Graph did not
    /// say (missing or `null`): unknown, never taken for "never".
    pub expires_at: Option<i64>,
    /// The app the token belongs to, as Graph names it.
    pub app_id: Option<String>,
    /// The error code Graph gives for an invalid token (`190`, ...), when it gives one.
    pub error_code: Option<i64>,
    /// The subcode with it (`458` app removed, `460` password changed, `463` expired, ...).
    pub error_subcode: Option<i64>,
}

impl TokenHealth {
    /// Whether the token expires before `deadline` (unix seconds). Never, for a token that
    /// never expires or whose expiry is unknown.
    #[must_use]
    pub fn expires_before(&self, deadline: i64) -> bool {
        matches!(self.expires_at, Some(t) if t != 0 && t < deadline)
    }
}

impl GraphClient {
    /// Fetches the customer's business token:
    /// `POST {base}/{version}/{business_id}/system_user_access_tokens` with the system user
    /// token as `Authorization: Bearer`, and query `appsecret_proof`, `system_user_id` and
    /// `fetch_only=true`, answering `{"access_token": "…"}`.
    ///
    /// Transient failures are retried in process within [`crate::RetryPolicy`].
    ///
    /// # Errors
    ///
    /// The last attempt's error, transient or permanent (see [`GraphError::is_transient`],
    /// [`GraphError::retry_after`]).
    pub async fn fetch_business_token(&self, business_id: &BusinessId) -> Result<SecretString> {
        let span = tracing::info_span!(
            "graph.fetch_business_token",
            graph.business_id = business_id.as_str(),
            graph.attempts = Empty,
            error.type = Empty,
        );
        async {
            let inner = &self.inner;
            let call = Call {
                otel_name: "POST /{business_id}/system_user_access_tokens",
                template: "/{business_id}/system_user_access_tokens",
                url: self.url(&[business_id.as_str(), "system_user_access_tokens"]),
                method: reqwest::Method::POST,
                bearer: inner.system_user_token.expose_secret(),
                query: vec![
                    ("appsecret_proof", inner.system_user_proof.expose_secret()),
                    ("system_user_id", inner.system_user_id.as_str()),
                    ("fetch_only", "true"),
                ],
                secrets: vec![],
            };
            self.execute(&call, business_token).await
        }
        .instrument(span)
        .await
    }

    /// Asks Graph about `input_token`: `GET {base}/{version}/debug_token?input_token=…` with
    /// the app access token `{app_id}|{app secret}` as `Authorization: Bearer` and its
    /// `appsecret_proof`, answering `{"data": {"is_valid", "expires_at", ...}}`.
    ///
    /// An invalid token is an answer (`is_valid: false`), not an error.
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] if the token is empty; [`GraphError::Malformed`] if the reply
    /// has no `data.is_valid`; otherwise the last attempt's error, as for
    /// [`GraphClient::fetch_business_token`].
    pub async fn debug_token(
        &self,
        app_id: &AppId,
        input_token: &SecretString,
    ) -> Result<TokenHealth> {
        let span = tracing::info_span!(
            "graph.debug_token",
            graph.attempts = Empty,
            error.type = Empty,
        );
        async {
            let (input, input_proof) = self.business_credentials(input_token)?;
            let app_token = format!(
                "{}|{}",
                app_id.as_str(),
                self.inner.app_secret.expose_secret()
            );
            let app_proof = proof(&self.inner.app_secret, &app_token);
            let call = Call {
                otel_name: "GET /debug_token",
                template: "/debug_token",
                url: self.url(&["debug_token"]),
                method: reqwest::Method::GET,
                bearer: &app_token,
                query: vec![("input_token", input), ("appsecret_proof", &app_proof)],
                secrets: vec![input, &input_proof, &app_token, &app_proof],
            };
            self.execute(&call, token_health).await
        }
        .instrument(span)
        .await
    }
}

/// Whether `e` says the token used is no longer valid: a permanent `190` (any subcode).
#[must_use]
pub fn token_invalid(e: &GraphError) -> bool {
    !e.is_transient() && e.code() == Some(190)
}
