//! [`GraphClient`]'s core: building a request from a [`Call`], sending it with reqwest,
//! reading a bounded reply, and retrying transient failures in process with backon. What each
//! call asks for lives beside it, one module per resource (`crate::token`, `crate::waba`).
//!
//! Ids arrive typed (`wa-ids`): a [`wa_ids::BusinessId`] or [`wa_ids::WabaId`] is 1 to 32
//! ASCII digits, so it is one path segment and can never reach another path.
//!
//! Secrets travel only in `Authorization` headers and query parameters that reqwest puts on
//! the wire; spans carry the path template (`/{business_id}/system_user_access_tokens`), never
//! the URL with its query, and every error is built from `reqwest::Error::without_url` and
//! scrubbed of the request's tokens and proofs before it leaves this module.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use backon::{ExponentialBuilder, Retryable};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::{Instrument, Span, field::Empty};
use url::Url;
use wa_envelope::signature::hmac_hex;
use wa_ids::SystemUserId;

use crate::{
    GraphConfig, GraphError, Result, RetryPolicy, error::parse_error_redacted, reply::malformed,
};

/// Most bytes of a reply body we read; the rest is dropped with the connection.
const MAX_BODY: usize = 64 * 1024;

/// A Graph API client for onboarding. Cloning is cheap (one `Arc`); share one per process.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    /// `{base}` parsed, with the version kept apart so each call appends its own segments.
    base: Url,
    version: String,
    pub(crate) app_secret: SecretString,
    pub(crate) system_user_id: SystemUserId,
    pub(crate) system_user_token: SecretString,
    /// `appsecret_proof` of the system user token, computed once.
    pub(crate) system_user_proof: SecretString,
    retry: RetryPolicy,
    /// The per-request timeout.
    timeout: Duration,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.inner.base.as_str())
            .field("version", &self.inner.version)
            .field("system_user_id", &self.inner.system_user_id)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One call, described once: what the retry loop re-sends and what spans may show.
pub(crate) struct Call<'a> {
    /// Span name and `otel.name`, e.g. `POST /{business_id}/system_user_access_tokens`.
    pub(crate) otel_name: &'static str,
    /// Path template below the version, for `url.template`.
    pub(crate) template: &'static str,
    /// Full URL without query string.
    pub(crate) url: Url,
    /// `GET` or `POST`.
    pub(crate) method: reqwest::Method,
    /// Query parameters; may hold secrets, never logged.
    pub(crate) query: Vec<(&'static str, &'a str)>,
    /// The token sent as `Authorization: Bearer`, never logged.
    pub(crate) bearer: &'a str,
    /// This call's tokens and proofs, scrubbed from any error text (with the client's own).
    pub(crate) secrets: Vec<&'a str>,
}

impl GraphClient {
    /// Checks `cfg` and builds the HTTP client (rustls, no redirects: a redirect would carry
    /// the query string, and its tokens, to another URL).
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] when [`GraphConfig::validate`] refuses `cfg`, or the TLS
    /// client cannot be built.
    pub fn new(cfg: GraphConfig) -> Result<Self> {
        let (base, version) = cfg.validate()?;
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wa-onboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                GraphError::Config(format!("cannot build HTTP client: {}", e.without_url()))
            })?;
        let system_user_proof = SecretString::from(proof(
            &cfg.app_secret,
            cfg.system_user_token.expose_secret(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                version,
                app_secret: cfg.app_secret,
                system_user_id: cfg.system_user_id,
                system_user_token: cfg.system_user_token,
                system_user_proof,
                retry: cfg.retry,
                timeout: cfg.timeout,
            }),
        })
    }

    /// The longest one call can take, its in-process retries included: the retry budget
    /// (up to the start of the last attempt) plus that attempt's timeout.
    #[must_use]
    pub fn call_budget(&self) -> Duration {
        self.inner
            .retry
            .max_total
            .saturating_add(self.inner.timeout)
    }

    /// `{base}/{version}/{segments…}`, without query.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // `new` checked the scheme is http(s), which always has path segments.
            path.pop_if_empty()
                .push(&self.inner.version)
                .extend(segments);
        }
        url
    }

    /// Sends `call` until it succeeds, fails permanently, or the retry policy says stop.
    pub(crate) async fn execute<T>(
        &self,
        call: &Call<'_>,
        extract: fn(Value) -> Result<T>,
    ) -> Result<T> {
        let policy = self.inner.retry;
        let started = Instant::now();
        let attempts = AtomicUsize::new(0);
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_factor(2.0)
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1));
        let result = (|| self.attempt(call, attempts.fetch_add(1, Ordering::Relaxed), extract))
            .retry(backoff)
            .when(GraphError::is_transient)
            .adjust(|err, backoff| {
                // `None` from backon: attempts used up. Otherwise prefer the server's hint
                // over our backoff, and retry only if the pause ends within the budget.
                let pause = match err.retry_after() {
                    Some(hint) => backoff.map(|_| hint)?,
                    None => backoff?.min(policy.max_delay),
                };
                let remaining = policy.max_total.saturating_sub(started.elapsed());
                if pause > remaining {
                    tracing::info!(
                        error = %err,
                        pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "Graph pause beyond the in-process retry budget; handing back"
                    );
                    return None;
                }
                Some(pause)
            })
            .notify(|err, pause| {
                tracing::warn!(
                    error = %err,
                    pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "transient Graph error, retrying"
                );
            })
            .await;
        let span = Span::current();
        span.record("graph.attempts", attempts.load(Ordering::Relaxed));
        if let Err(err) = &result {
            span.record("error.type", err.kind());
        }
        result
    }

    /// One HTTP exchange, in its own client span.
    async fn attempt<T>(
        &self,
        call: &Call<'_>,
        resend_count: usize,
        extract: fn(Value) -> Result<T>,
    ) -> Result<T> {
        let span = tracing::info_span!(
            "graph.request",
            otel.name = call.otel_name,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = call.method.as_str(),
            url.template = call.template,
            server.address = self.inner.base.host_str().unwrap_or_default(),
            http.request.resend_count = resend_count,
            http.response.status_code = Empty,
            graph.error.code = Empty,
            graph.fbtrace_id = Empty,
            error.type = Empty,
        );
        async {
            let result = self
                .send(call, extract)
                .await
                .map_err(|e| self.redact(e, call));
            if let Err(err) = &result {
                let span = Span::current();
                span.record("otel.status_code", "ERROR");
                span.record("error.type", err.kind());
                if let Some(code) = err.code() {
                    span.record("graph.error.code", code);
                }
                if let Some(id) = err.fbtrace_id() {
                    span.record("graph.fbtrace_id", id);
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Scrubs every secret the client knows from `err`: the call's token and proof, the
    /// system user token and its proof, and the app secret.
    fn redact(&self, err: GraphError, call: &Call<'_>) -> GraphError {
        err.redact(&self.secrets(call))
    }

    /// Every secret `call` may see echoed back: its own and the client's.
    fn secrets<'a>(&'a self, call: &Call<'a>) -> Vec<&'a str> {
        let inner = &self.inner;
        let mut secrets = call.secrets.clone();
        secrets.extend([
            inner.system_user_token.expose_secret(),
            inner.system_user_proof.expose_secret(),
            inner.app_secret.expose_secret(),
        ]);
        secrets
    }

    async fn send<T>(&self, call: &Call<'_>, extract: fn(Value) -> Result<T>) -> Result<T> {
        let request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .query(&call.query)
            .bearer_auth(call.bearer);
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        Span::current().record("http.response.status_code", status.as_u16());
        let headers = response.headers().clone();
        let (body, truncated) = read_bounded(response).await.map_err(network)?;
        if !status.is_success() {
            return Err(parse_error_redacted(
                status.as_u16(),
                &headers,
                &body,
                &self.secrets(call),
            ));
        }
        if truncated {
            return Err(malformed("reply larger than 64 KiB"));
        }
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| malformed("reply is not JSON"))?;
        if value.get("error").is_some() {
            // A 2xx carrying Graph's error envelope: believe the envelope.
            return Err(parse_error_redacted(
                status.as_u16(),
                &headers,
                &body,
                &self.secrets(call),
            ));
        }
        extract(value)
    }
}

impl GraphClient {
    /// A business token and its `appsecret_proof`, for the calls made with that token.
    pub(crate) fn business_credentials<'a>(
        &self,
        business_token: &'a SecretString,
    ) -> Result<(&'a str, String)> {
        let token = business_token.expose_secret();
        if token.is_empty() {
            return Err(GraphError::Config("business token is empty".into()));
        }
        Ok((token, proof(&self.inner.app_secret, token)))
    }
}

/// `appsecret_proof`: lowercase hex HMAC-SHA256 of `token`, keyed by the app secret.
pub(crate) fn proof(app_secret: &SecretString, token: &str) -> String {
    hmac_hex(app_secret.expose_secret().as_bytes(), token.as_bytes())
}

/// A transport error as text: the error and its causes, without the URL.
fn network(err: reqwest::Error) -> GraphError {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    GraphError::Network { message }
}

/// Reads at most [`MAX_BODY`] bytes; `true` when the body was longer.
async fn read_bounded(mut response: reqwest::Response) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}
