//! The webhook ingress: Meta's deliveries in, confirmed broker messages out.
//!
//! What this crate owns: the HTTP surface of docs/REFERENCE.md, "Ingress routes" (verification
//! handshake, signed deliveries, health, readiness, metrics), its bounds (body size, header
//! and body read time, open connections, and bytes of bodies not yet authenticated), and the
//! rule that a delivery is answered `200` only once the broker has confirmed
//! every one of its changes. Anything less is a `503` with `Retry-After`, so Meta delivers
//! again. The same rule holds for the Embedded Signup session events the partner's backend
//! forwards (`POST /v1/signup-events`, bearer-authenticated, `202` once confirmed; see
//! `routes/signup.rs`). It never reads Redis or calls the Graph API; splitting and signing
//! rules live in `wa-envelope`, the connection and topology in `wa-broker`.
//!
//! [`run`] takes its listener and a shutdown token, so tests and benchmarks run the real
//! server on port 0.

mod metrics;
mod routes;

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::info;
use wa_broker::{Broker, BrokerConfig};

pub use metrics::{Metrics, OVERLOAD_REASONS, ROUTE_STATUSES, SIGNATURE_FAILURE_REASONS};

/// The default of `WA_PUBLISH_CHANNELS`: the confirm channels the ingress spreads its
/// deliveries over, each shared by any number of them. Chosen by measurement
/// (docs/BENCHMARKS.md, "Ingress"): with 64 client connections, 1, 2, 4 and 16 channels in
/// one run, 2 had the most webhooks per second and the least CPU per webhook in both rounds,
/// though within the run's noise of 1 and 4; 16 cost more CPU (lapin reads every channel's
/// flow flag before each frame it writes).
pub const PUBLISH_CHANNELS: u16 = 2;

/// Everything the ingress needs to run.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// App secrets (`WA_APP_SECRET`, comma-separated): a signature made with any one is valid,
    /// so a secret can be rotated without refusing deliveries.
    pub app_secrets: Vec<SecretString>,
    /// `WA_VERIFY_TOKEN`: the token Meta echoes in the subscription handshake.
    pub verify_token: SecretString,
    /// `WA_MAX_BODY_BYTES`: larger bodies are refused with `413` before they are read whole.
    pub max_body_bytes: usize,
    /// `WA_MAX_CONNECTIONS`: open client connections; past it a new one is closed at once.
    pub max_connections: usize,
    /// `WA_MAX_UNVERIFIED_BYTES`: bytes of webhook bodies held, across every request, before
    /// their signature is checked. A delivery reserves its `Content-Length` (or
    /// `max_body_bytes` when it has none) before its body is read; past the bound it is
    /// answered `503` with `Retry-After`. At least `max_body_bytes`.
    pub max_unverified_bytes: usize,
    /// How to reach RabbitMQ.
    pub broker: BrokerConfig,
    /// Seconds announced in `Retry-After` when the broker cannot take a delivery.
    pub retry_after_secs: u32,
    /// How long a client may take to send its headers, and then its body.
    pub read_timeout: Duration,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// `WA_SIGNUP_API_TOKEN`: the bearer the partner's backend sends with Embedded Signup
    /// session events (`POST /v1/signup-events`). `None` turns the route off (`404`).
    pub signup_api_token: Option<SecretString>,
}

impl IngressConfig {
    /// A configuration with the defaults of docs/REFERENCE.md ("Variables") around the
    /// required values.
    pub fn new(
        app_secrets: Vec<SecretString>,
        verify_token: SecretString,
        broker: BrokerConfig,
    ) -> Self {
        Self {
            app_secrets,
            verify_token,
            max_body_bytes: 4 * 1024 * 1024,
            max_connections: 1024,
            max_unverified_bytes: 64 * 1024 * 1024,
            broker,
            retry_after_secs: 5,
            read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            signup_api_token: None,
        }
    }
}

/// Why the ingress stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// The configuration cannot work (e.g. no app secret).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the ingress on `listener` until `shutdown` is cancelled, then stops accepting,
/// lets in-flight requests finish (up to `shutdown_grace`) and closes the broker connection.
///
/// # Errors
///
/// [`IngressError::Config`] for an unusable configuration. Accept errors are logged and
/// survived (a full file table must not stop the service).
pub async fn run(
    listener: TcpListener,
    config: IngressConfig,
    shutdown: CancellationToken,
) -> Result<(), IngressError> {
    if config.app_secrets.is_empty() {
        return Err(IngressError::Config("at least one app secret is required"));
    }
    if config.max_connections == 0 {
        return Err(IngressError::Config(
            "WA_MAX_CONNECTIONS must be at least 1",
        ));
    }
    if config.max_unverified_bytes < config.max_body_bytes {
        return Err(IngressError::Config(
            "WA_MAX_UNVERIFIED_BYTES must be at least WA_MAX_BODY_BYTES",
        ));
    }
    let broker_shutdown = CancellationToken::new();
    let broker = Broker::start(config.broker.clone(), broker_shutdown.clone());
    let app = Arc::new(routes::App::new(config, broker));

    let options = wa_http::Serve {
        role: "ingress",
        read_timeout: app.config.read_timeout,
        shutdown_grace: app.config.shutdown_grace,
    };
    let connections = Arc::new(Semaphore::new(app.config.max_connections));
    info!(role = "ingress", addr = %listener.local_addr()?, "listening");
    let counted = app.clone();
    // Past the bound a connection is closed unread: it costs nothing more.
    let admit = move || match connections.clone().try_acquire_owned() {
        Ok(slot) => Some((metrics::Held::new(&counted.metrics.connections, 1), slot)),
        Err(_) => {
            counted.metrics.overloaded("connections");
            None
        }
    };
    wa_http::serve(listener, options, shutdown, admit, move |req| {
        routes::handle(app.clone(), req)
    })
    .await;
    broker_shutdown.cancel();
    info!("ingress stopped");
    Ok(())
}
