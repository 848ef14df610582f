//! `wa-bench worker`: state-only `account_update` events per second through one in-process
//! worker (dedupe claim, atomic tenant update, done marker, ack), next to a plain lapin
//! consume-and-ack loop over the same number of messages from the same kind of queue; the
//! events, the broker and the clean-up the scaling phases ([`crate::scaling`]) share.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use base64::Engine;
use clap::Args;
use futures_util::StreamExt;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use wa_broker::{
    Broker, BrokerConfig, Outgoing, Topology,
    lapin::{
        options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
        types::FieldTable,
    },
};
use wa_envelope::Envelope;

use crate::load::cleanup;

/// Options of `wa-bench worker`.
#[derive(Args)]
pub struct WorkerBench {
    /// Events to process in each phase.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) events: usize,
    /// Prefetch of the worker process, split between its two queues (`WA_PREFETCH`).
    #[arg(long, default_value_t = 256)]
    pub(crate) prefetch: u16,
    /// Messages the worker process handles at once, across both queues (`WA_CONCURRENCY`).
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// AMQP URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub(crate) amqp_url: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub(crate) redis_url: String,
    /// Also measure state events and installs (Graph simulator answering at once) with 1, 2
    /// and 4 `wa-onboard worker` processes started from this binary.
    #[arg(long)]
    scaling_bin: Option<std::path::PathBuf>,
    /// With `--scaling-bin`, also run the scaling phases against this RabbitMQ cluster
    /// (comma-separated node URLs, as `AMQP_URL` takes them).
    #[arg(long, env = "WA_CLUSTER_AMQP_URL")]
    pub(crate) cluster_amqp_url: Option<String>,
    /// The Redis the cluster phases use (comma-separated Redis Cluster node URLs); the
    /// standalone `--redis-url` when absent.
    #[arg(long, env = "WA_CLUSTER_REDIS_URL")]
    pub(crate) cluster_redis_url: Option<String>,
}

/// What the queued events are.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `DISABLED_UPDATE`: claim, one atomic tenant update, done marker, ack.
    State,
    /// `PARTNER_APP_INSTALLED`: plus a token fetch and a subscription on the simulator.
    Install,
}

impl Kind {
    /// Its name in the scaling table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::State => "state events",
            Self::Install => "installs",
        }
    }
}

async fn fill(broker: &Broker, events: usize) -> anyhow::Result<()> {
    fill_kind(broker, events, Kind::State).await
}

pub(crate) async fn fill_kind(broker: &Broker, events: usize, kind: Kind) -> anyhow::Result<()> {
    let exchange = broker.topology().webhooks_exchange();
    let mut batch = Vec::with_capacity(500);
    for i in 0..events {
        let value = match kind {
            Kind::State => serde_json::json!({"event": "DISABLED_UPDATE",
                "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "2026-12-01"}}),
            Kind::Install => serde_json::json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {
                "waba_id": format!("{}", 100_000_000_000_000usize + i),
                "owner_business_id": format!("{}", 200_000_000_000_000usize + i),
                "partner_app_id": "1061231232323117"}}),
        };
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{
            "id": format!("{}", 100_000_000_000_000usize + i), "time": 1_763_900_000 + i as i64,
            "changes": [{"field": "account_update", "value": value}]}]});
        for c in Envelope::parse(body.to_string().as_bytes())?.into_changes(0) {
            batch.push(Outgoing::persistent_json(
                exchange.as_str(),
                c.routing_key(),
                c.to_json(),
                c.id.as_str(),
                0,
            ));
        }
        if batch.len() == 500 || i + 1 == events {
            broker.publish_all(&batch).await?;
            batch.clear();
        }
    }
    Ok(())
}

pub(crate) async fn start_broker(
    url: &str,
    topology: Topology,
) -> anyhow::Result<(Broker, CancellationToken)> {
    let stop = CancellationToken::new();
    let broker = Broker::start(BrokerConfig::new(url, topology)?, stop.clone());
    anyhow::ensure!(
        broker.wait_ready(Duration::from_secs(10)).await,
        "broker not ready"
    );
    Ok((broker, stop))
}

async fn raw_phase(args: &WorkerBench, topology: Topology) -> anyhow::Result<Duration> {
    let (broker, stop) = start_broker(&args.amqp_url, topology).await?;
    fill(&broker, args.events).await?;
    let channel = broker.open_channel().await?;
    channel
        .basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            broker.topology().account_update_queue().as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    let mut seen = 0;
    while seen < args.events {
        let Some(delivery) = consumer.next().await else {
            break;
        };
        delivery?.ack(BasicAckOptions::default()).await?;
        seen += 1;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    Ok(elapsed)
}

async fn worker_phase(
    args: &WorkerBench,
    topology: Topology,
    redis_prefix: &str,
) -> anyhow::Result<Duration> {
    let (broker, stop) = start_broker(&args.amqp_url, topology.clone()).await?;
    fill(&broker, args.events).await?;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let config = wa_worker::WorkerConfig {
        broker: BrokerConfig::new(&args.amqp_url, topology)?,
        redis: wa_store::RedisConfig::parse(&args.redis_url, false)?,
        redis_prefix: redis_prefix.to_owned(),
        token_key: wa_store::TokenKey::from_base64(&key)?,
        // Never called for state-only events.
        graph: wa_graph::GraphConfig::new(
            SecretString::from("bench".to_owned()),
            "1".parse().expect("a system user id"),
            SecretString::from("bench".to_owned()),
        ),
        partner_business_ids: HashSet::new(),
        // The app the bench's installs name.
        app_id: "1061231232323117".parse().expect("an app id"),
        subscribe_app: false,
        dedupe_ttl: Duration::from_secs(600),
        lease: Duration::from_secs(60),
        prefetch: args.prefetch,
        concurrency: args.concurrency,
        refresh_before: Duration::from_secs(7 * 86_400),
        census_interval: wa_worker::CENSUS_INTERVAL,
        census_lease: wa_worker::census_lease(wa_worker::CENSUS_INTERVAL),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ops = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let worker = tokio::spawn(wa_worker::run(listener, config, shutdown.clone()));
    let client = reqwest::Client::new();
    loop {
        let text = match client.get(format!("http://{ops}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let done: f64 = text
            .lines()
            .filter(|l| l.starts_with("wa_worker_events_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if done as usize >= args.events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    worker.await??;
    stop.cancel();
    Ok(elapsed)
}

/// Deletes every Redis key under `prefix`, so runs do not pile up tenants: on each node of
/// `redis_url` (a standalone Redis, or a Redis Cluster's comma-separated nodes).
pub(crate) async fn forget(redis_url: &str, prefix: &str) -> anyhow::Result<()> {
    let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
    tokio::task::spawn_blocking(move || wa_testkit::forget_redis_prefix(&url, &prefix)).await?;
    Ok(())
}

/// Sum of `wa_worker_events_total` at one worker's metrics endpoint.
pub(crate) async fn processed(client: &reqwest::Client, ops: std::net::SocketAddr) -> usize {
    let text = match client.get(format!("http://{ops}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter(|l| l.starts_with("wa_worker_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize
}

/// Runs both phases and prints the report.
#[allow(clippy::print_stdout)] // The report is the output.
pub async fn run(args: WorkerBench) -> anyhow::Result<()> {
    println!(
        "wa-bench worker: {} state-only events, prefetch {}, concurrency {}",
        args.events, args.prefetch, args.concurrency
    );
    let id = format!("{:08x}", rand::random::<u32>());
    let raw_topology = Topology::new(format!("benchw{id}r"));
    let raw = raw_phase(&args, raw_topology.clone()).await?;
    cleanup(&args.amqp_url, &raw_topology).await?;
    let raw_rate = args.events as f64 / raw.as_secs_f64();
    println!(
        "raw      consume+ack   {raw_rate:>9.0} /s   ({:.2} s)",
        raw.as_secs_f64()
    );
    let mut topology = Topology::new(format!("benchw{id}w"));
    topology.retry_delays = vec![Duration::from_secs(5)];
    let worker = worker_phase(&args, topology.clone(), &format!("bench:{id}:")).await?;
    cleanup(&args.amqp_url, &topology).await?;
    forget(&args.redis_url, &format!("bench:{id}:")).await?;
    let rate = args.events as f64 / worker.as_secs_f64();
    println!(
        "worker   state events  {rate:>9.0} /s   ({:.2} s, includes start-up)",
        worker.as_secs_f64()
    );
    println!("ratio worker/raw = {:.2}", rate / raw_rate);
    if let Some(bin) = &args.scaling_bin {
        crate::scaling::run(&args, bin).await?;
    }
    Ok(())
}
