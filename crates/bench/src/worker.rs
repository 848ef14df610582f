//! `wa-bench worker`: state-only `account_update` events per second through one in-process
//! worker (dedupe claim, atomic tenant update, done marker, ack), next to a plain lapin
//! consume-and-ack loop over the same number of messages from the same kind of queue.

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
        self,
        options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
        types::FieldTable,
    },
};
use wa_envelope::Envelope;

/// Options of `wa-bench worker`.
#[derive(Args)]
pub struct WorkerBench {
    /// Events to process in each phase.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Prefetch of both consumers.
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Worker concurrency.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// AMQP URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    redis_url: String,
}

async fn fill(broker: &Broker, events: usize) -> anyhow::Result<()> {
    let exchange = broker.topology().webhooks_exchange();
    let mut batch = Vec::with_capacity(500);
    for i in 0..events {
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{
            "id": format!("{}", 100_000_000_000_000usize + i), "time": 1_763_900_000 + i as i64,
            "changes": [{"field": "account_update", "value": {"event": "DISABLED_UPDATE",
                "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "2026-12-01"}}}]}]});
        for c in Envelope::parse(body.to_string().as_bytes())?.into_changes(0) {
            batch.push(Outgoing::persistent_json(
                exchange.as_str(),
                c.routing_key(),
                c.to_json(),
                &c.id,
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

async fn start_broker(
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
        redis_url: args.redis_url.clone(),
        redis_prefix: redis_prefix.to_owned(),
        token_key: wa_store::TokenKey::from_base64(&key)?,
        // Never called for state-only events.
        graph: wa_graph::GraphConfig::new(
            SecretString::from("bench".to_owned()),
            "1",
            SecretString::from("bench".to_owned()),
        ),
        partner_business_ids: HashSet::new(),
        subscribe_app: false,
        dedupe_ttl: Duration::from_secs(600),
        lease: Duration::from_secs(60),
        prefetch: args.prefetch,
        concurrency: args.concurrency,
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

async fn cleanup(url: &str, topology: &Topology) -> anyhow::Result<()> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    for q in topology.queues() {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    for x in [
        topology.webhooks_exchange(),
        topology.unrouted(),
        topology.dlq_exchange(),
    ] {
        let _ = ch
            .exchange_delete(x.as_str().into(), Default::default())
            .await;
    }
    Ok(())
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
    let rate = args.events as f64 / worker.as_secs_f64();
    println!(
        "worker   state events  {rate:>9.0} /s   ({:.2} s, includes start-up)",
        worker.as_secs_f64()
    );
    println!("ratio worker/raw = {:.2}", rate / raw_rate);
    Ok(())
}
