//! The WABA resource, with the customer's business token: subscribing our app, listing the
//! subscribed apps, listing the phone numbers. Every call sends the token as
//! `Authorization: Bearer` with its `appsecret_proof`; never stores or logs a token.

use secrecy::SecretString;
use serde_json::Value;
use tracing::{Instrument, Span, field::Empty};
use wa_ids::{PhoneNumberId, WabaId};

use crate::{
    GraphClient, Result,
    client::Call,
    reply::{phone_number_ids, subscribed, subscribed_app_ids},
};

/// One call on `/{waba_id}/{edge}` with the business token.
struct Edge {
    otel_name: &'static str,
    template: &'static str,
    edge: &'static str,
    method: reqwest::Method,
    /// Query parameters besides `appsecret_proof`.
    query: &'static [(&'static str, &'static str)],
}

/// Most phone numbers read for one WABA (one page of `phone_numbers`).
pub const MAX_PHONE_NUMBERS: usize = 100;
/// [`MAX_PHONE_NUMBERS`] as the `limit` parameter.
const PHONE_NUMBERS_LIMIT: &str = "100";

impl GraphClient {
    /// Subscribes our app to the customer's WABA: `POST {base}/{version}/{waba_id}/
    /// subscribed_apps?appsecret_proof=…` with the business token as `Authorization: Bearer`,
    /// answering `{"success": true}`. Idempotent on Meta's side.
    ///
    /// Transient failures are retried in process within [`crate::RetryPolicy`].
    ///
    /// # Errors
    ///
    /// [`crate::GraphError::Config`] if the token is empty; otherwise the last attempt's error, as
    /// for [`GraphClient::fetch_business_token`].
    pub async fn subscribe_app(
        &self,
        waba_id: &WabaId,
        business_token: &SecretString,
    ) -> Result<()> {
        let span = tracing::info_span!(
            "graph.subscribe_app",
            graph.waba_id = waba_id.as_str(),
            graph.attempts = Empty,
            error.type = Empty,
        );
        let edge = Edge {
            otel_name: "POST /{waba_id}/subscribed_apps",
            template: "/{waba_id}/subscribed_apps",
            edge: "subscribed_apps",
            method: reqwest::Method::POST,
            query: &[],
        };
        self.on_waba(span, &edge, waba_id, business_token, subscribed)
            .await
    }

    /// The ids of the apps subscribed to the customer's WABA: `GET {base}/{version}/{waba_id}/
    /// subscribed_apps?appsecret_proof=…` with the business token as `Authorization: Bearer`,
    /// answering `{"data": [{"whatsapp_business_api_data": {"id", "name", ...}}]}`.
    ///
    /// Transient failures are retried in process within [`crate::RetryPolicy`].
    ///
    /// # Errors
    ///
    /// [`crate::GraphError::Config`] if the token is empty; [`crate::GraphError::Malformed`] if the reply
    /// is not such a list; otherwise the last attempt's error, as for
    /// [`GraphClient::fetch_business_token`].
    pub async fn subscribed_apps(
        &self,
        waba_id: &WabaId,
        business_token: &SecretString,
    ) -> Result<Vec<String>> {
        let span = tracing::info_span!(
            "graph.subscribed_apps",
            graph.waba_id = waba_id.as_str(),
            graph.attempts = Empty,
            error.type = Empty,
        );
        let edge = Edge {
            otel_name: "GET /{waba_id}/subscribed_apps",
            template: "/{waba_id}/subscribed_apps",
            edge: "subscribed_apps",
            method: reqwest::Method::GET,
            query: &[],
        };
        self.on_waba(span, &edge, waba_id, business_token, subscribed_app_ids)
            .await
    }

    /// The WABA's phone number ids as Graph lists them: `GET {base}/{version}/{waba_id}/
    /// phone_numbers?fields=id&limit=…&appsecret_proof=…` with the business token in an
    /// `Authorization: Bearer` header, answering `{"data": [{"id", ...}]}`. At most
    /// [`MAX_PHONE_NUMBERS`] are read (one page).
    ///
    /// Transient failures are retried in process within [`crate::RetryPolicy`].
    ///
    /// # Errors
    ///
    /// [`crate::GraphError::Config`] if the token is empty; [`crate::GraphError::Malformed`] if the reply
    /// is not such a list (or an id breaks the phone number id rule); otherwise the last
    /// attempt's error, as for [`GraphClient::fetch_business_token`].
    pub async fn phone_numbers(
        &self,
        waba_id: &WabaId,
        business_token: &SecretString,
    ) -> Result<Vec<PhoneNumberId>> {
        let span = tracing::info_span!(
            "graph.phone_numbers",
            graph.waba_id = waba_id.as_str(),
            graph.attempts = Empty,
            error.type = Empty,
        );
        let edge = Edge {
            otel_name: "GET /{waba_id}/phone_numbers",
            template: "/{waba_id}/phone_numbers",
            edge: "phone_numbers",
            method: reqwest::Method::GET,
            query: &[("fields", "id"), ("limit", PHONE_NUMBERS_LIMIT)],
        };
        self.on_waba(span, &edge, waba_id, business_token, phone_number_ids)
            .await
    }

    /// Sends `edge` for `waba_id` with `business_token` and its proof, within `span`.
    async fn on_waba<T>(
        &self,
        span: Span,
        edge: &Edge,
        waba_id: &WabaId,
        business_token: &SecretString,
        extract: fn(Value) -> Result<T>,
    ) -> Result<T> {
        async {
            let (token, token_proof) = self.business_credentials(business_token)?;
            let mut query = edge.query.to_vec();
            query.push(("appsecret_proof", &token_proof));
            let call = Call {
                otel_name: edge.otel_name,
                template: edge.template,
                url: self.url(&[waba_id.as_str(), edge.edge]),
                method: edge.method.clone(),
                bearer: token,
                query,
                secrets: vec![token, &token_proof],
            };
            self.execute(&call, extract).await
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_sent_is_the_most_read() {
        assert_eq!(
            super::PHONE_NUMBERS_LIMIT,
            super::MAX_PHONE_NUMBERS.to_string()
        );
    }
}
