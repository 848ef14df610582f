//! The `account_update` worker: dedupe, tenant state, business tokens.
//!
//! What this crate owns: consuming `wa.account_update` (with the business integration
//! webhooks) and `wa.signup_events` (Embedded Signup session events, [`session`]) with manual
//! acks, bounded prefetch and concurrency ([`consumer`]); the pure decision for each change
//! ([`decide`]); carrying it out against Redis and the Graph API ([`process`]); delay tiers
//! and the dead-letter queue ([`dlq`] for operators); and the worker's metrics and health
//! endpoint. Replicas coordinate through RabbitMQ and Redis only.
//!
//! It never parses HTTP requests or verifies signatures (the ingress did), never keeps a
//! token outside `wa-store`'s encrypted records, and never logs one.

pub mod consumer;
pub mod decide;
pub mod dlq;
mod integration;
pub mod metrics;
mod ops;
pub mod process;
pub mod session;

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wa_broker::{Broker, BrokerConfig};
use wa_graph::{GraphClient, GraphConfig};
use wa_ids::BusinessId;
use wa_store::{Store, TokenKey};

pub use metrics::Metrics;

/// Everything the worker needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// RabbitMQ, with the delay tiers (`WA_RETRY_DELAYS`) set on its topology.
    pub broker: BrokerConfig,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    /// `WA_TOKEN_KEY`: encrypts business tokens at rest.
    pub token_key: TokenKey,
    /// Graph API access.
    pub graph: GraphConfig,
    /// `WA_PARTNER_BUSINESS_IDS`: the partner's own portfolio ids, never a tenant.
    pub partner_business_ids: HashSet<BusinessId>,
    /// `WA_SUBSCRIBE_APP`.
    pub subscribe_app: bool,
    /// `WA_DEDUPE_TTL`: how long a done change is remembered (longer than Meta's 7 days).
    pub dedupe_ttl: Duration,
    /// How long a claim holds while a change is processed; a crashed worker's claim expires.
    pub lease: Duration,
    /// Unacknowledged deliveries the broker may push ahead.
    pub prefetch: u16,
    /// Messages processed at once.
    pub concurrency: usize,
}

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The Graph configuration is unusable.
    #[error("graph: {0}")]
    Graph(#[from] wa_graph::GraphError),
    /// Listener failure.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

async fn connect_store(config: &WorkerConfig, shutdown: &CancellationToken) -> Option<Store> {
    let mut delay = Duration::from_millis(100);
    loop {
        match Store::connect(&config.redis_url, &config.redis_prefix).await {
            Ok(store) => return Some(store),
            Err(e) => warn!(error = %e, retry_in = ?delay, "redis unreachable"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Runs the worker until `shutdown`: health and metrics on `ops_listener`, consuming as soon
/// as RabbitMQ and Redis are reachable. On shutdown it stops consuming, finishes the
/// messages in progress, and returns.
///
/// # Errors
///
/// [`WorkerError`] for an unusable configuration.
pub async fn run(
    ops_listener: TcpListener,
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let graph = GraphClient::new(config.graph.clone())?;
    let metrics = Arc::new(Metrics::default());
    let broker_shutdown = CancellationToken::new();
    let broker = Broker::start(config.broker.clone(), broker_shutdown.clone());
    let ops_shutdown = CancellationToken::new();
    let store_connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ready = ops::Readiness {
        broker: broker.clone(),
        store_connected: store_connected.clone(),
    };
    let ops = tokio::spawn(ops::serve(
        ops_listener,
        ready,
        metrics.clone(),
        ops_shutdown.clone(),
    ));
    if let Some(store) = connect_store(&config, &shutdown).await {
        store_connected.store(true, std::sync::atomic::Ordering::Relaxed);
        let consumer = Arc::new(consumer::Consumer {
            broker: broker.clone(),
            store: store.clone(),
            effects: process::Effects {
                vault: store.with_token_key(config.token_key.clone()),
                store,
                graph,
                subscribe_app: config.subscribe_app,
                metrics: metrics.clone(),
            },
            metrics,
            partner_business_ids: config.partner_business_ids.clone(),
            dedupe_ttl: config.dedupe_ttl,
            lease: config.lease,
            prefetch: config.prefetch,
            concurrency: config.concurrency,
            queue: broker.topology().account_update_queue(),
        });
        // A second consumer, same process and claims, for Embedded Signup session events.
        let signups = Arc::new(session::signup_consumer(&consumer));
        tokio::join!(
            consumer.run(shutdown.clone()),
            signups.run(shutdown.clone())
        );
    }
    broker_shutdown.cancel();
    ops_shutdown.cancel();
    let _ = ops.await;
    info!("worker stopped");
    Ok(())
}
