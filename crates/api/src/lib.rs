//! The internal API: what the partner's own services (messaging, billing, CRM) read about
//! tenants, over HTTP with bearer tokens (docs/REFERENCE.md, "Internal API";
//! `docs/openapi.yaml`).
//!
//! What this crate owns: the routes ([`ROUTES`]) and their answers, who may call them
//! ([`Callers`], from `WA_API_TOKENS`, compared in constant time), every bound on request
//! input (no body, a bounded query, typed ids, an opaque paging cursor; see [`query`]), the
//! audit log of business token reads and the API's metrics. It only reads Redis, through
//! `wa-store` (a [`TokenVault`] for tokens); it never writes state, never touches the broker
//! or the Graph API, and never logs a token.
//!
//! [`run`] takes its listener and a shutdown token, so tests run the real server on port 0.

mod auth;
mod metrics;
pub mod query;
mod routes;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;
use wa_store::TokenVault;

pub use crate::{
    auth::{Callers, MIN_TOKEN_LEN},
    routes::ROUTES,
};

/// Everything the API needs to run.
#[derive(Debug)]
pub struct ApiConfig {
    /// `WA_API_TOKENS`: who may call.
    pub callers: Callers,
    /// Tenant state and business tokens (`REDIS_URL`, `WA_REDIS_PREFIX`, `WA_TOKEN_KEY`).
    pub vault: TokenVault,
    /// How long a client may take to send its request headers.
    pub read_timeout: Duration,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl ApiConfig {
    /// A configuration with default timeouts (30 s each).
    #[must_use]
    pub fn new(callers: Callers, vault: TokenVault) -> Self {
        Self {
            callers,
            vault,
            read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What can go wrong: a configuration refused at start, a request refused, the listener.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `WA_API_TOKENS` cannot be used (the message names an entry by its position, never its
    /// text, so never a token).
    #[error("invalid API tokens: {0}")]
    Tokens(String),
    /// A request breaks a rule of its route (a `400`).
    #[error("{0}")]
    BadRequest(String),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the API on `listener` until `shutdown` is cancelled, then stops accepting and lets
/// in-flight requests finish (up to `shutdown_grace`).
///
/// # Errors
///
/// [`ApiError::Io`] if the listener's address cannot be read. Accept errors are logged and
/// survived.
pub async fn run(
    listener: TcpListener,
    config: ApiConfig,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    let metrics = metrics::Metrics::new(config.callers.names());
    let app = Arc::new(routes::App { config, metrics });
    let options = wa_http::Serve {
        role: "api",
        read_timeout: app.config.read_timeout,
        shutdown_grace: app.config.shutdown_grace,
    };
    info!(role = "api", addr = %listener.local_addr()?, callers = ?app.config.callers.names().collect::<Vec<_>>(), "listening");
    wa_http::serve(
        listener,
        options,
        shutdown,
        || Some(()),
        move |req| routes::handle(app.clone(), req),
    )
    .await;
    info!("api stopped");
    Ok(())
}
