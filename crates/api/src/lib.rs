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

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.read_timeout);
    let graceful = GracefulShutdown::new();
    info!(role = "api", addr = %listener.local_addr()?, callers = ?app.config.callers.names().collect::<Vec<_>>(), "listening");
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| routes::handle(app.clone(), req));
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    info!("api draining in-flight requests");
    if tokio::time::timeout(app.config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("shutdown grace elapsed with requests still in flight");
    }
    info!("api stopped");
    Ok(())
}
