//! The `account_update` worker: dedupe, tenant state, business tokens.
//!
//! What this crate owns: consuming `wa.account_update` (with the business integration
//! webhooks), `wa.signup_events` (Embedded Signup session events) and `wa.tenant_checks`
//! (tenant checks queued by `reconcile`), and the census of token health gauges. The modules form a
//! one-way stack, each importing only those below it:
//!
//! - [`run`] (this file) binds each queue to its handler and starts the consumers;
//! - `consumer`: the one consume loop, generic over a queue's handler: manual acks, bounded
//!   prefetch and concurrency, dedupe claims, delay tiers and the dead-letter queue;
//! - `handler`: per queue, how a body is read and which plan and effects it gets;
//! - [`plan`]: per message kind, the pure decision (no I/O);
//! - `effects`: per message kind, carrying a plan out against Redis and the Graph API, and
//!   publishing the tenant events of what it changed;
//! - [`events`]: the tenant events (`wa.tenant_events`): their JSON, stable ids, publisher;
//! - `outcome`, `headers`, `clock`, [`metrics`]: leaves (how applying ended; AMQP header
//!   names; the wall clock in Unix seconds; the metrics and the outcome names logs, spans and
//!   metrics share);
//! - [`dlq`] and [`reconcile`] for operators, `ops`, the health and metrics endpoint, and `census`, which
//!   walks the tenants to count token health on one replica at a time (a Redis lease), and
//!   shows the last count published on every replica.
//!
//! Replicas coordinate through RabbitMQ and Redis only. It never parses HTTP requests or
//! verifies signatures (the ingress did), never keeps a token outside `wa-store`'s encrypted
//! records, and never logs one.

mod census;
mod clock;
mod consumer;
pub mod dlq;
mod effects;
pub mod events;
mod handler;
mod headers;
pub mod metrics;
mod ops;
mod outcome;
pub mod plan;
pub mod reconcile;

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use wa_broker::{Broker, BrokerConfig};
use wa_graph::{GraphClient, GraphConfig};
use wa_ids::{AppId, BusinessId};
use wa_store::{RedisConfig, Store, StoreError, TokenKey};

pub use census::lease_ttl as census_lease;
pub use metrics::Metrics;

use crate::{
    consumer::{Consumer, Limits, Services},
    effects::{
        account_update::AccountUpdates, check::Checks, integration::Integrations, session::Sessions,
    },
    events::TenantEvents,
    handler::{AccountUpdateHandler, CheckHandler, SignupHandler},
};

/// Everything the worker needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// RabbitMQ, with the delay tiers (`WA_RETRY_DELAYS`) set on its topology.
    pub broker: BrokerConfig,
    /// `REDIS_URL` and how to reach it (cluster, TLS, replicas to wait for).
    pub redis: RedisConfig,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    /// `WA_TOKEN_KEY`: encrypts business tokens at rest.
    pub token_key: TokenKey,
    /// Graph API access.
    pub graph: GraphConfig,
    /// `WA_PARTNER_BUSINESS_IDS`: the partner's own portfolio ids, never a tenant.
    pub partner_business_ids: HashSet<BusinessId>,
    /// `WA_APP_ID`: the partner's Meta app; installs and uninstalls naming another app are
    /// not applied.
    pub app_id: AppId,
    /// `WA_SUBSCRIBE_APP`.
    pub subscribe_app: bool,
    /// `WA_DEDUPE_TTL`: how long a done change is remembered (longer than Meta's 7 days).
    pub dedupe_ttl: Duration,
    /// How long a claim holds while a change is processed; a crashed worker's claim expires.
    pub lease: Duration,
    /// `WA_PREFETCH`: unacknowledged deliveries of webhooks and signup events this process may
    /// hold, split between their two queues by [`prefetch_shares`]; `wa.tenant_checks` takes
    /// as many as `wa.signup_events` (docs/REFERENCE.md, "Variables").
    pub prefetch: u16,
    /// `WA_CONCURRENCY`: messages this process handles at once, across its queues.
    pub concurrency: usize,
    /// `WA_TOKEN_REFRESH_BEFORE`: a tenant check fetches a new token when the held one
    /// expires sooner than this.
    pub refresh_before: Duration,
    /// How often the token health gauges are recounted ([`CENSUS_INTERVAL`] in production).
    pub census_interval: Duration,
    /// How long the census lease holds once taken or renewed: a crashed holder's runs out
    /// after this ([`census_lease`] of the interval in production).
    pub census_lease: Duration,
}

/// How often the replica holding the census lease recounts the token health gauges (and the
/// others try to take the lease).
pub const CENSUS_INTERVAL: Duration = Duration::from_secs(60);

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

/// Opens the store once Redis answers and every primary has the replicas writes wait for
/// (`WA_REDIS_WAIT_REPLICAS`); until then logs why (once for a primary refusing the `INFO`
/// that tells, which lasts), says it on `/readyz` (`waiting`), and tries again with backoff. Replicas may come after the worker (a replica restarting, a
/// promoted master whose old one has not rejoined): waiting, not consuming, keeps every
/// message in its queue instead of failing its writes through the delay tiers.
async fn connect_store(
    config: &WorkerConfig,
    waiting: &std::sync::Mutex<Option<String>>,
    shutdown: &CancellationToken,
) -> Option<Store> {
    let mut delay = Duration::from_millis(100);
    let mut opened = None;
    // The last "cannot check" reason logged: a refused INFO lasts, so it is logged once.
    let mut unchecked_said = None;
    let say_waiting = |why: Option<String>| {
        if let Ok(mut w) = waiting.lock() {
            *w = why;
        }
    };
    loop {
        if opened.is_none() {
            match Store::open(&config.redis, &config.redis_prefix).await {
                Ok(store) => opened = Some(store),
                Err(e) => warn!(error = %e, retry_in = ?delay, "redis unreachable"),
            }
        }
        if let Some(store) = &opened {
            match store.replica_shortfall().await {
                Ok(None) => {
                    say_waiting(None);
                    return opened;
                }
                Ok(Some(short)) => {
                    warn!(%short, retry_in = ?delay, "redis has too few replicas: not consuming");
                    say_waiting(Some(short.to_string()));
                }
                Err(e @ StoreError::ReplicasUnchecked { .. }) => {
                    let why = e.to_string();
                    if unchecked_said.as_ref() != Some(&why) {
                        error!(
                            error = %why,
                            "cannot check WA_REDIS_WAIT_REPLICAS: not consuming; set it to 0 or \
                             allow INFO to the Redis user (checking again every few seconds)"
                        );
                        unchecked_said = Some(why.clone());
                    }
                    say_waiting(Some(why));
                }
                Err(e @ StoreError::PrimaryUnasked { .. }) => {
                    warn!(error = %e, retry_in = ?delay, "redis primary not asked: not consuming");
                    say_waiting(Some(e.to_string()));
                    // The client's slot map may be the stale part: connect again, which
                    // reads the cluster's topology afresh.
                    opened = None;
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?delay, "redis unreachable");
                    say_waiting(None);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// `WA_PREFETCH` split between the two queues, `(wa.account_update, wa.signup_events)`: half
/// each, the odd one to `wa.account_update`, and never 0 (which AMQP reads as "unlimited").
pub fn prefetch_shares(prefetch: u16) -> (u16, u16) {
    let signups = (prefetch / 2).max(1);
    let account_update = prefetch.saturating_sub(signups).max(1);
    (account_update, signups)
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
    let metrics = Arc::new(Metrics::new(&config.broker.topology.retry_delays));
    let broker_shutdown = CancellationToken::new();
    let broker = Broker::start(config.broker.clone(), broker_shutdown.clone());
    let ops_shutdown = CancellationToken::new();
    let store_connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store_waiting = Arc::new(std::sync::Mutex::new(None));
    let ready = ops::Readiness {
        broker: broker.clone(),
        store_connected: store_connected.clone(),
        store_waiting: store_waiting.clone(),
    };
    let ops = tokio::spawn(ops::serve(
        ops_listener,
        ready,
        metrics.clone(),
        ops_shutdown.clone(),
    ));
    if let Some(store) = connect_store(&config, &store_waiting, &shutdown).await {
        store_connected.store(true, std::sync::atomic::Ordering::Relaxed);
        let (account_update_prefetch, signups_prefetch) = prefetch_shares(config.prefetch);
        let limits = Limits {
            prefetch: account_update_prefetch,
            lease: config.lease,
            dedupe_ttl: config.dedupe_ttl,
        };
        let topology = broker.topology();
        let events = TenantEvents::new(broker.clone(), metrics.clone());
        let vault = store.with_token_key(config.token_key.clone());
        let checks = Consumer::new(
            topology.tenant_checks_queue(),
            CheckHandler {
                checks: Checks {
                    store: store.clone(),
                    vault: vault.clone(),
                    graph: graph.clone(),
                    app_id: config.app_id.clone(),
                    subscribe_app: config.subscribe_app,
                    refresh_before: config.refresh_before,
                    lease: config.lease,
                    metrics: metrics.clone(),
                    events: events.clone(),
                },
            },
            Limits {
                prefetch: signups_prefetch,
                ..limits
            },
        );
        let census = tokio::spawn(census::run(
            store.clone(),
            metrics.clone(),
            config.refresh_before,
            config.census_interval,
            config.census_lease,
            shutdown.clone(),
        ));
        let account_update = Consumer::new(
            topology.account_update_queue(),
            AccountUpdateHandler {
                partner_business_ids: config.partner_business_ids.clone(),
                app_id: config.app_id.clone(),
                account_updates: AccountUpdates {
                    store: store.clone(),
                    vault,
                    graph: graph.clone(),
                    subscribe_app: config.subscribe_app,
                    app_id: config.app_id.clone(),
                    metrics: metrics.clone(),
                    events: events.clone(),
                },
                integrations: Integrations {
                    store: store.clone(),
                    events,
                },
            },
            limits,
        );
        let signups = Consumer::new(
            topology.signup_events_queue(),
            SignupHandler {
                sessions: Sessions {
                    store: store.clone(),
                    metrics: metrics.clone(),
                },
            },
            Limits {
                prefetch: signups_prefetch,
                ..limits
            },
        );
        info!(
            prefetch = config.prefetch,
            concurrency = config.concurrency,
            "limits of this process, across both queues"
        );
        let services = Services {
            broker: broker.clone(),
            store,
            metrics,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
        };
        tokio::join!(
            account_update.run(services.clone(), shutdown.clone()),
            signups.run(services.clone(), shutdown.clone()),
            checks.run(services, shutdown.clone()),
        );
        let _ = census.await;
    }
    broker_shutdown.cancel();
    ops_shutdown.cancel();
    let _ = ops.await;
    info!("worker stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::prefetch_shares;

    #[test]
    fn prefetch_is_split_between_the_queues_and_never_zero() {
        assert_eq!(prefetch_shares(64), (32, 32));
        assert_eq!(prefetch_shares(5), (3, 2));
        assert_eq!(prefetch_shares(2), (1, 1));
        assert_eq!(prefetch_shares(1), (1, 1));
        assert_eq!(prefetch_shares(0), (1, 1));
    }
}
