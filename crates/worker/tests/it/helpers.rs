//! `spawn_env`: one isolated world per test (its own AMQP prefix and Redis prefix, a wiremock
//! Graph API), `spawn_worker` to start as many workers in it as the test wants, and ways to
//! stop them. What a test reads of that world is in `observe`, what it sends in `payloads`;
//! both are re-exported here, so a test imports `helpers::*` alone.

use std::{collections::HashSet, net::SocketAddr, sync::OnceLock, time::Duration};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

pub use crate::{observe::*, payloads::*};
use base64::Engine;
use secrecy::SecretString;
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use wa_broker::{Broker, BrokerConfig, Outgoing, Topology};
use wa_envelope::Envelope;
use wa_graph::{GraphConfig, RetryPolicy};
use wa_ids::{AppId, BusinessId, SessionId, SystemUserId, WabaId};
use wa_store::{Store, TokenKey, TokenVault};
pub use wa_testkit::{Proxy, amqp_url, eventually, redis_cluster_urls, redis_url};
use wa_worker::WorkerConfig;
use wiremock::MockServer;

pub const APP_SECRET: &str = "worker-test-app-secret";
pub const SYSTEM_USER_TOKEN: &str = "system-user-token-xyz";
pub const SYSTEM_USER_ID: &str = "61550000000001";
pub const PARTNER: &str = "2949482758682047";
/// `WA_APP_ID` of the workers under test, and the `partner_app_id` of [`installed`].
pub const APP_ID: &str = "1061231232323117";

/// Every span the worker tests produce, exported in memory. One global subscriber for the
/// whole test binary: tracing caches per-callsite interest process-wide, so per-test
/// thread-local subscribers miss spans while other tests run.
pub fn spans() -> &'static InMemorySpanExporter {
    static SPANS: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    &SPANS
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let fmt = std::env::var_os("TEST_LOG")
                .map(|_| tracing_subscriber::fmt::layer().with_test_writer());
            let _ = tracing_subscriber::registry()
                .with(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with(
                    tracing_opentelemetry::layer().with_tracer(provider.tracer("wa-worker-tests")),
                )
                .with(fmt)
                .try_init();
            (exporter, provider)
        })
        .0
}

fn init_tracing() {
    spans();
}

pub struct Env {
    pub topology: Topology,
    /// `REDIS_URL` of the store and the workers (several nodes: the Redis Cluster).
    pub redis_url: String,
    pub redis_prefix: String,
    pub key: TokenKey,
    pub store: Store,
    /// The store's tokens, under `key`.
    pub vault: TokenVault,
    pub graph: MockServer,
    /// The test's own publisher.
    pub broker: Broker,
    broker_stop: CancellationToken,
    workers: Vec<Worker>,
}

pub struct Worker {
    pub ops: SocketAddr,
    /// The worker reaches RabbitMQ through this, so a test can take it away as a crash would.
    proxy: Proxy,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<Result<(), wa_worker::WorkerError>>>,
}

pub async fn spawn_env() -> Env {
    spawn_env_with_delays(vec![Duration::from_millis(200), Duration::from_millis(400)]).await
}

/// As [`spawn_env`], on the Redis Cluster of scripts/redis-cluster.sh.
pub async fn spawn_env_on_cluster() -> Env {
    let delays = vec![Duration::from_millis(200), Duration::from_millis(400)];
    spawn_env_on(redis_cluster_urls(), delays).await
}

/// As [`spawn_env`], with the delay tiers `retry_delays`.
pub async fn spawn_env_with_delays(retry_delays: Vec<Duration>) -> Env {
    spawn_env_on(redis_url(), retry_delays).await
}

async fn spawn_env_on(redis_url: String, retry_delays: Vec<Duration>) -> Env {
    init_tracing();
    let id = format!("{:016x}", rand::random::<u64>());
    let mut topology = Topology::new(format!("w{id}"));
    topology.retry_delays = retry_delays;
    let redis_prefix = format!("test:{id}:");
    let key_bytes: [u8; 32] = rand::random();
    let key = TokenKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(key_bytes))
        .expect("key");
    let store = Store::connect(&redis_url, &redis_prefix)
        .await
        .expect("redis");
    let vault = store.with_token_key(key.clone());
    let broker_stop = CancellationToken::new();
    let broker = Broker::start(
        BrokerConfig::new(&amqp_url(), topology.clone()).expect("amqp"),
        broker_stop.clone(),
    );
    assert!(broker.wait_ready(Duration::from_secs(10)).await, "RabbitMQ");
    Env {
        topology,
        redis_url,
        redis_prefix,
        key,
        store,
        vault,
        graph: MockServer::start().await,
        broker,
        broker_stop,
        workers: Vec::new(),
    }
}

impl Env {
    pub fn config(&self) -> WorkerConfig {
        let mut graph = GraphConfig::new(
            SecretString::from(APP_SECRET.to_owned()),
            SystemUserId::parse(SYSTEM_USER_ID).expect("id"),
            SecretString::from(SYSTEM_USER_TOKEN.to_owned()),
        );
        graph.base = self.graph.uri();
        graph.retry = RetryPolicy {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_attempts: 3,
            max_total: Duration::from_secs(2),
        };
        let mut broker = BrokerConfig::new(&amqp_url(), self.topology.clone()).expect("amqp");
        broker.reconnect_min = Duration::from_millis(50);
        broker.reconnect_max = Duration::from_millis(300);
        WorkerConfig {
            broker,
            redis: wa_store::RedisConfig::parse(&self.redis_url, false).expect("REDIS_URL"),
            redis_prefix: self.redis_prefix.clone(),
            token_key: self.key.clone(),
            graph,
            partner_business_ids: HashSet::from([business(PARTNER)]),
            app_id: AppId::parse(APP_ID).expect("an app id"),
            subscribe_app: true,
            dedupe_ttl: Duration::from_secs(3600),
            lease: Duration::from_secs(2),
            prefetch: 16,
            concurrency: 8,
            refresh_before: Duration::from_secs(7 * 24 * 3600),
            census_interval: Duration::from_millis(200),
            census_lease: wa_worker::census_lease(Duration::from_millis(200)),
        }
    }

    /// Starts a worker with `config`; returns its index.
    pub async fn spawn_worker_with(&mut self, mut config: WorkerConfig) -> usize {
        let direct: wa_broker::lapin::uri::AMQPUri = amqp_url().parse().expect("AMQP_URL");
        let proxy = Proxy::start(format!(
            "{}:{}",
            direct.authority.host, direct.authority.port
        ))
        .await;
        config.broker.urls = vec![format!(
            "amqp://{}:{}@{}/%2f",
            direct.authority.userinfo.username, direct.authority.userinfo.password, proxy.addr
        )];
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ops = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(wa_worker::run(listener, config, shutdown.clone()));
        self.workers.push(Worker {
            ops,
            proxy,
            shutdown,
            handle: Some(handle),
        });
        let client = reqwest::Client::new();
        eventually(Duration::from_secs(10), "worker ready", || {
            let client = client.clone();
            async move {
                client
                    .get(format!("http://{ops}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                    .then_some(())
            }
        })
        .await;
        self.workers.len() - 1
    }

    /// As a crash: the worker stops where it is and its broker connection drops, so the
    /// broker requeues what it had not acked.
    pub async fn kill_worker(&mut self, worker: usize) {
        let w = &mut self.workers[worker];
        if let Some(h) = w.handle.take() {
            h.abort();
        }
        w.proxy.cut();
    }

    /// Stops worker `worker` gracefully, as a rolling update does; the others go on.
    pub async fn stop_worker(&mut self, worker: usize) {
        let w = &mut self.workers[worker];
        w.shutdown.cancel();
        if let Some(h) = w.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .expect("worker stops after shutdown")
                .expect("join")
                .expect("worker result");
        }
    }

    /// Worker `worker`'s health and metrics address.
    pub fn ops(&self, worker: usize) -> SocketAddr {
        self.workers[worker].ops
    }

    pub async fn spawn_worker(&mut self) -> usize {
        let config = self.config();
        self.spawn_worker_with(config).await
    }

    /// Publishes every change of a webhook body, as the ingress would.
    pub async fn deliver(&self, body: &Value) {
        let envelope = Envelope::parse(body.to_string().as_bytes()).expect("envelope");
        let messages: Vec<Outgoing> = envelope
            .into_changes(0)
            .into_iter()
            .map(|c| {
                Outgoing::persistent_json(
                    self.topology.webhooks_exchange(),
                    c.routing_key(),
                    c.to_json(),
                    c.id.as_str(),
                    0,
                )
            })
            .collect();
        self.broker.publish_all(&messages).await.expect("publish");
    }

    /// Stops every worker gracefully, then removes the test's queues and keys.
    pub async fn stop(mut self) {
        for w in 0..self.workers.len() {
            self.stop_worker(w).await;
        }
        if let Ok(ch) = self.broker.open_channel().await {
            let _ = self.topology.delete(&ch).await;
        }
        self.broker_stop.cancel();
        wa_testkit::forget_redis_prefix(&self.redis_url, &self.redis_prefix);
    }
}

pub fn waba_id(id: &str) -> WabaId {
    WabaId::parse(id).expect("a WABA id")
}

pub fn business(id: &str) -> BusinessId {
    BusinessId::parse(id).expect("a business id")
}

pub fn session(id: &str) -> SessionId {
    SessionId::parse(id).expect("a session id")
}
