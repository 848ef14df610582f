//! `wa-bench ingress`: in one run, on fresh topology prefixes, the raw confirmed-publish
//! ceiling, the wa-onboard ingress and any external receivers, each at full load (closed loop)
//! and at half load (open loop at a fraction of its own full rate), then one table.
//!
//! Every receiver gets the same load: `--connections` keep-alive HTTP/1.1 connections POSTing
//! the same pre-signed ~1 KiB one-change install webhooks (pre-built, so the load generator
//! spends nothing on HMAC or encoding), each waiting for the `200`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Args;
use wa_broker::{Broker, BrokerConfig, Outgoing, Topology, lapin};

use crate::{
    Summary, http1,
    load::{cleanup, closed_loop, open_loop},
    receiver::{self, Env, Kind, SECRET, Spec},
    report::{Report, Row},
};

/// Options of `wa-bench ingress`.
#[derive(Args)]
pub struct IngressBench {
    /// Concurrent clients (HTTP connections, or raw publishing tasks).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Length of each phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before each phase's measurement.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Confirm channels in the pool of the raw publisher and of the wa-onboard ingresses
    /// (`WA_PUBLISH_CHANNELS`); unset, the raw publisher uses the ingress's default and each
    /// ingress its own.
    #[arg(long)]
    channels: Option<usize>,
    /// AMQP URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Run the ingress as this `wa-onboard` binary in a child process (its CPU and peak RSS
    /// are then reported on their own) instead of in this process.
    #[arg(long)]
    ingress_bin: Option<PathBuf>,
    /// Also measure this receiver, `NAME=COMMAND` (run as `sh -c COMMAND` with `PORT`,
    /// `WA_LISTEN`, `AMQP_URL`, `WA_APP_SECRET`, `WA_VERIFY_TOKEN`, `WA_AMQP_PREFIX` set).
    /// Repeatable; measured in the order given, after the ingress.
    #[arg(long = "receiver", value_parser = receiver::parse_external)]
    receivers: Vec<Spec>,
    /// Queues an external receiver declares for itself, deleted after each of its phases so
    /// its messages do not pile up on the broker. Repeatable.
    #[arg(long = "receiver-queue")]
    receiver_queues: Vec<String>,
    /// After each full-load phase, offer this fraction of its rate open-loop (at a fixed pace,
    /// latency measured from each request's scheduled time); 0 turns it off.
    #[arg(long, alias = "open-loop", default_value_t = 0.5)]
    half_load: f64,
    /// Leave out the wa-onboard ingress (measure only the raw ceiling and the receivers).
    #[arg(long)]
    no_ingress: bool,
    /// Repeat every phase this many times (alternating).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

/// About 1 KiB, like a real account_update install with its waba_info.
fn body(i: usize) -> Vec<u8> {
    let pad = "x".repeat(700);
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "2949482758682047", "time": 1763900000 + i as i64, "changes": [{
            "field": "account_update",
            "value": {"event": "PARTNER_APP_INSTALLED", "waba_info": {
                "waba_id": format!("{}", 100000000000000usize + i),
                "owner_business_id": "942647313864044", "partner_app_id": "1061231232323117"},
                "note": pad}
        }]}]
    })
    .to_string()
    .into_bytes()
}

/// The pre-signed requests every receiver is sent.
fn requests() -> Vec<Vec<u8>> {
    (0..4096)
        .map(|i| {
            let b = body(i);
            let sig = wa_envelope::sign(SECRET.as_bytes(), &b);
            http1::request(
                "POST",
                "/webhooks/whatsapp",
                &[
                    ("content-type", "application/json"),
                    ("x-hub-signature-256", &sig),
                ],
                &b,
            )
        })
        .collect()
}

/// The raw ceiling: the broker crate's confirm-channel pool publishing exactly the messages the
/// ingress publishes for the same webhooks (body, message id, `traceparent`), built before the
/// clock starts, each task waiting for its confirm.
async fn raw_phase(
    args: &IngressBench,
    prefix: &str,
) -> anyhow::Result<(Summary, Option<Summary>)> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut config = BrokerConfig::new(&args.amqp_url, Topology::new(prefix))?;
    config.channels = args
        .channels
        .unwrap_or(usize::from(wa_ingress::PUBLISH_CHANNELS));
    let broker = Broker::start(config, shutdown.clone());
    anyhow::ensure!(
        broker.wait_ready(Duration::from_secs(10)).await,
        "broker not ready"
    );
    let exchange = broker.topology().webhooks_exchange();
    let messages: Arc<Vec<Outgoing>> = Arc::new(
        (0..4096)
            .map(|i| {
                let change = wa_envelope::Envelope::parse(&body(i))
                    .map(|e| e.into_changes(0).remove(0))
                    .expect("bench body is an envelope");
                Outgoing::persistent_json(
                    exchange.as_str(),
                    change.routing_key(),
                    change.to_json(),
                    change.id.as_str(),
                    0,
                )
                .header(
                    wa_telemetry::TRACEPARENT,
                    wa_telemetry::traceparent(&tracing::Span::none()),
                )
            })
            .collect(),
    );
    let op = move |t: usize, i: usize| {
        let broker = broker.clone();
        let messages = messages.clone();
        async move {
            let message = &messages[(t * 64 + i) % messages.len()];
            broker
                .publish_all(std::slice::from_ref(message))
                .await
                .is_ok()
        }
    };
    let full = closed_loop(args.connections, args.warmup, args.duration, op.clone()).await;
    let half = if args.half_load > 0.0 {
        let rate = full.rate() * args.half_load;
        Some(open_loop(args.connections, rate, args.warmup, args.duration, op).await)
    } else {
        None
    };
    shutdown.cancel();
    Ok((full, half))
}

/// One receiver at full and half load; its peak RSS read before it stops.
async fn receiver_phase(
    args: &IngressBench,
    spec: &Spec,
    prefix: &str,
    requests: &Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<(Summary, Option<Summary>, Option<u64>)> {
    let env = Env {
        amqp_url: &args.amqp_url,
        prefix,
        channels: args.channels,
    };
    let running = receiver::start(spec, &env, &requests[0]).await?;
    crate::cpu::CHILD.store(
        running.pid.unwrap_or(0),
        std::sync::atomic::Ordering::Relaxed,
    );
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        clients.push(tokio::sync::Mutex::new(
            http1::Client::connect(running.addr).await?,
        ));
    }
    let clients = Arc::new(clients);
    let requests = requests.clone();
    let op = move |t: usize, i: usize| {
        let (clients, requests) = (clients.clone(), requests.clone());
        async move {
            let request = &requests[(t * 64 + i) % requests.len()];
            let mut client = clients[t].lock().await;
            client.round_trip(request).await.is_ok_and(|s| s == 200)
        }
    };
    let full = closed_loop(args.connections, args.warmup, args.duration, op.clone()).await;
    let half = if args.half_load > 0.0 {
        let rate = full.rate() * args.half_load;
        Some(open_loop(args.connections, rate, args.warmup, args.duration, op).await)
    } else {
        None
    };
    let rss = running.pid.and_then(crate::cpu::tree_peak_rss_kib);
    crate::cpu::CHILD.store(0, std::sync::atomic::Ordering::Relaxed);
    running.stop().await?;
    Ok((full, half, rss))
}

/// Deletes the queues an external receiver declared for itself.
async fn delete_queues(url: &str, queues: &[String]) -> anyhow::Result<()> {
    if queues.is_empty() {
        return Ok(());
    }
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    for queue in queues {
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await?;
    }
    Ok(())
}

/// Runs the phases and prints the report.
#[allow(clippy::print_stdout)] // The report is the output.
pub async fn run(args: IngressBench) -> anyhow::Result<()> {
    let channels = args
        .channels
        .map_or_else(|| "default".to_owned(), |c| c.to_string());
    println!(
        "wa-bench ingress: {} connections, {channels} channels, {:?} per phase (after {:?} warm-up), half load {}x, {} round(s)",
        args.connections, args.duration, args.warmup, args.half_load, args.rounds
    );
    let mut receivers = Vec::new();
    if !args.no_ingress {
        receivers.push(Spec {
            name: "wa-onboard".to_owned(),
            kind: args
                .ingress_bin
                .clone()
                .map_or(Kind::InProcess, Kind::Ingress),
        });
    }
    receivers.extend(args.receivers.iter().cloned());
    let requests = Arc::new(requests());
    let mut report = Report::default();
    for round in 0..args.rounds {
        let prefix = format!("bench{:08x}", rand::random::<u32>());
        let raw_prefix = format!("{prefix}r");
        let (full, half) = raw_phase(&args, &raw_prefix).await?;
        cleanup(&args.amqp_url, &Topology::new(raw_prefix)).await?;
        report.add(Row::new(round, "raw lapin", "full", full, None));
        if let Some(half) = half {
            report.add(Row::new(round, "raw lapin", "half", half, None));
        }
        for (n, spec) in receivers.iter().enumerate() {
            let phase_prefix = format!("{prefix}x{n}");
            let (full, half, rss) = receiver_phase(&args, spec, &phase_prefix, &requests).await?;
            cleanup(&args.amqp_url, &Topology::new(phase_prefix)).await?;
            if matches!(spec.kind, Kind::External(_)) {
                delete_queues(&args.amqp_url, &args.receiver_queues).await?;
            }
            report.add(Row::new(round, &spec.name, "full", full, rss));
            if let Some(half) = half {
                report.add(Row::new(round, &spec.name, "half", half, rss));
            }
        }
    }
    println!();
    print!("{}", report.table());
    print!("{}", report.ratios("raw lapin"));
    Ok(())
}
