//! The Graph API calls that onboarding needs, and a local stand-in for Graph.
//!
//! This crate owns everything wa-onboard says to Meta's Graph API:
//!
//! - [`GraphClient::fetch_business_token`]: `POST /{business_id}/system_user_access_tokens`
//!   with the partner's system user token, its `appsecret_proof`, `system_user_id` and
//!   `fetch_only=true`, answering the customer's business token.
//! - [`GraphClient::debug_token`]: `GET /debug_token?input_token=…` with the app access token
//!   `{app_id}|{app secret}`, answering a token's [`TokenHealth`] (validity, expiry).
//! - [`GraphClient::subscribe_app`]: `POST /{waba_id}/subscribed_apps` with the business token.
//! - [`GraphClient::subscribed_apps`]: `GET /{waba_id}/subscribed_apps`, the apps subscribed.
//! - [`GraphClient::phone_numbers`]: `GET /{waba_id}/phone_numbers`, the WABA's phone number
//!   ids.
//!
//! Every access token travels in an `Authorization: Bearer` header with its
//! `appsecret_proof`. The client's core is `client` (send, bounded read, retry); each
//! resource's calls are in their own module (`token`, `waba`).
//! - [`GraphError`]: Meta's error envelope parsed and classified as transient or permanent
//!   (docs/REFERENCE.md, "Graph API calls"), with the server's `Retry-After` /
//!   `X-Business-Use-Case-Usage` hint.
//! - In-process retry with exponential backoff and jitter (backon), bounded by a
//!   [`RetryPolicy`] of a few seconds. When the server asks for a longer pause than that, the
//!   call stops and returns the transient error with [`GraphError::retry_after`] so the caller
//!   can park the message in a delay queue instead of holding a worker.
//! - [`sim`]: a small hyper server that answers those calls like Graph does, with
//!   switchable failure modes and token and subscription states, for runs and demos without
//!   internet.
//!
//! It never touches Redis, the broker or tenant state: it returns tokens as
//! [`secrecy::SecretString`] and errors with a token-free [`GraphError::summary`], and the
//! caller decides what to store, retry later or dead-letter. Tokens, app secret proofs and URLs
//! with query strings never reach a log line, a span or an error message.

mod client;
mod error;
mod reply;
pub mod sim;
mod token;
mod waba;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;
use wa_ids::SystemUserId;

pub use client::GraphClient;
pub use error::{GraphError, PERMANENT_CODES, Result, TRANSIENT_CODES, classify, parse_error};
pub use token::{TokenHealth, token_invalid};
pub use waba::MAX_PHONE_NUMBERS;

/// The Graph API base URL used when none is configured.
pub const DEFAULT_BASE: &str = "https://graph.facebook.com";
/// The Graph API version used when none is configured.
pub const DEFAULT_VERSION: &str = "v22.0";
/// The per-request timeout used by [`GraphConfig::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything [`GraphClient`] needs to talk to Graph.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Graph base URL without version, e.g. `https://graph.facebook.com` (`WA_GRAPH_BASE`).
    /// `http://` is accepted for the simulator and tests.
    pub base: String,
    /// Graph API version path segment, e.g. `v22.0` (`WA_GRAPH_VERSION`).
    pub version: String,
    /// The app secret: key of every `appsecret_proof` (the first of `WA_APP_SECRET`).
    pub app_secret: SecretString,
    /// The partner's system user id, sent as `system_user_id` (`WA_SYSTEM_USER_ID`).
    pub system_user_id: SystemUserId,
    /// The partner's system user token (`business_management`), used to fetch business tokens
    /// (`WA_SYSTEM_USER_TOKEN`).
    pub system_user_token: SecretString,
    /// Timeout of one HTTP attempt, connect to last body byte.
    pub timeout: Duration,
    /// How long and how often one call retries transient failures in process.
    pub retry: RetryPolicy,
}

impl GraphConfig {
    /// A configuration for Meta's Graph ([`DEFAULT_BASE`], [`DEFAULT_VERSION`]) with the
    /// default timeout and [`RetryPolicy::default`].
    pub fn new(
        app_secret: SecretString,
        system_user_id: SystemUserId,
        system_user_token: SecretString,
    ) -> Self {
        Self {
            base: DEFAULT_BASE.to_owned(),
            version: DEFAULT_VERSION.to_owned(),
            app_secret,
            system_user_id,
            system_user_token,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// Checks every field, answering the parsed base URL and the trimmed version.
    /// [`GraphClient::new`] calls it; a binary may call it at start to fail early.
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`], naming the field, when the base URL is not an absolute
    /// `http(s)` URL without query or fragment, the version is not one path segment of ASCII
    /// letters, digits and dots, a secret is empty, the timeout is zero,
    /// `retry.max_attempts` is zero or `retry.min_delay > retry.max_delay`. Messages never
    /// quote a secret.
    pub fn validate(&self) -> Result<(Url, String)> {
        let config = |m: &str| Err(GraphError::Config(m.to_owned()));
        let base = Url::parse(self.base.trim())
            .map_err(|e| GraphError::Config(format!("Graph base URL is invalid: {e}")))?;
        if !matches!(base.scheme(), "http" | "https")
            || !base.has_host()
            || base.query().is_some()
            || base.fragment().is_some()
        {
            return config(
                "Graph base URL must be an absolute http(s) URL without query or fragment",
            );
        }
        let version = self.version.trim();
        if version.is_empty()
            || !version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.')
        {
            return config("Graph version must be one path segment such as v22.0");
        }
        if self.app_secret.expose_secret().is_empty() {
            return config("app secret is empty");
        }
        if self.system_user_token.expose_secret().is_empty() {
            return config("system user token is empty");
        }
        if self.timeout.is_zero() {
            return config("Graph request timeout must be above zero");
        }
        if self.retry.max_attempts == 0 {
            return config("retry max_attempts must be at least 1");
        }
        if self.retry.min_delay > self.retry.max_delay {
            return config("retry min_delay must not exceed max_delay");
        }
        Ok((base, version.to_owned()))
    }
}

/// In-process retry of one Graph call.
///
/// This is the short, first line of retry: a worker holds the message while it runs, so the
/// whole budget is a few seconds. Longer waits belong to the caller's delay queues.
///
/// - Backoff is exponential (factor 2) from `min_delay`, capped at `max_delay`, with jitter:
///   each pause is drawn from `[d, min(2d, max_delay)]`.
/// - `max_attempts` counts requests, the first one included (`1` = never retry).
/// - `max_total` bounds the wall time from the first request to the start of the last one: a
///   retry is made only if its pause ends within the budget. The last attempt may still take
///   up to [`GraphConfig::timeout`].
/// - A server hint (`Retry-After`, `X-Business-Use-Case-Usage`) replaces the backoff pause
///   (it may exceed `max_delay`) when it fits in the remaining budget; otherwise the call
///   returns at once with [`GraphError::retry_after`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff pause.
    pub min_delay: Duration,
    /// Largest backoff pause (before a server hint, which may be longer).
    pub max_delay: Duration,
    /// Requests per call, the first included; at least 1.
    pub max_attempts: usize,
    /// Wall-time budget for retrying within the process.
    pub max_total: Duration,
}

impl RetryPolicy {
    /// One attempt, no retry: every transient error goes straight back to the caller.
    pub const fn no_retry() -> Self {
        Self {
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_attempts: 1,
            max_total: Duration::ZERO,
        }
    }
}

impl Default for RetryPolicy {
    /// 200 ms, doubling up to 2 s, at most 4 attempts within 5 s.
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_attempts: 4,
            max_total: Duration::from_secs(5),
        }
    }
}
