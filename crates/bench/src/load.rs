//! The two phases of `wa-bench ingress` and their closed-loop load generators.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wa_broker::{Broker, BrokerConfig, Outgoing, Topology, lapin};
use wa_ingress::IngressConfig;
use wa_testkit::Listening;

use crate::{CHILD_START, Summary, http1};

const SECRET: &str = "bench-app-secret";

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
    /// Confirm channels in the pool (both phases).
    #[arg(long, default_value_t = 8)]
    channels: usize,
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
    ingress_bin: Option<std::path::PathBuf>,
    /// After each closed-loop ingress phase, offer this fraction of its rate open-loop (at a
    /// fixed pace, latency measured from each request's scheduled time) and report latency.
    #[arg(long)]
    open_loop: Option<f64>,
    /// Repeat raw and ingress phases this many times (alternating).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

fn body(i: usize) -> Vec<u8> {
    // About 1 KiB, like a real account_update with its waba_info.
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

fn broker_config(url: &str, prefix: &str, channels: usize) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::new(url, Topology::new(prefix))?;
    config.channels = channels;
    Ok(config)
}

/// Removes a phase's queues and exchanges, through the first node of `url` (comma-separated
/// for a cluster).
pub(crate) async fn cleanup(url: &str, topology: &Topology) -> anyhow::Result<()> {
    let first = url.split(',').next().unwrap_or(url).trim();
    let conn = lapin::Connection::connect(first, lapin::ConnectionProperties::default()).await?;
    topology.delete(&conn.create_channel().await?).await?;
    Ok(())
}

/// Runs `op` from `tasks` closed-loop tasks: warm-up, then `duration` measured.
async fn closed_loop<F, Fut>(tasks: usize, warmup: Duration, duration: Duration, op: F) -> Summary
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now() + warmup;
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        crate::cpu::Cpu::now()
    });
    let end = start + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors, mut i) = (Vec::with_capacity(1 << 14), 0usize, 0usize);
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    let ok = op(t, i).await;
                    i += 1;
                    if began >= start {
                        if ok {
                            lat.push(began.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((lat, e)) = h.await {
            latencies.extend(lat);
            errors += e;
        }
    }
    let cpu = match cpu_at_start.await {
        Ok(at_start) => crate::cpu::Cpu::now().since(at_start),
        Err(_) => crate::cpu::Cpu::default(),
    };
    latencies.sort_unstable();
    Summary {
        ops: latencies.len(),
        errors,
        elapsed: duration,
        latencies,
        cpu,
    }
}

async fn raw_phase(args: &IngressBench, prefix: &str) -> anyhow::Result<Summary> {
    let shutdown = CancellationToken::new();
    let broker = Broker::start(
        broker_config(&args.amqp_url, prefix, args.channels)?,
        shutdown.clone(),
    );
    anyhow::ensure!(
        broker.wait_ready(Duration::from_secs(10)).await,
        "broker not ready"
    );
    // Exactly the messages the ingress publishes for the same webhooks (body, message id,
    // traceparent header), built before the clock starts: the raw publisher pays only for
    // publishing and confirms.
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
    let summary = closed_loop(args.connections, args.warmup, args.duration, move |t, i| {
        let broker = broker.clone();
        let messages = messages.clone();
        async move {
            let message = &messages[(t * 64 + i) % messages.len()];
            broker
                .publish_all(std::slice::from_ref(message))
                .await
                .is_ok()
        }
    })
    .await;
    shutdown.cancel();
    Ok(summary)
}

/// The ingress under test: in this process, or a `wa-onboard ingress` child.
enum Server {
    InProcess(
        CancellationToken,
        tokio::task::JoinHandle<Result<(), wa_ingress::IngressError>>,
    ),
    Child(Box<Listening>),
}

async fn start_ingress(args: &IngressBench, prefix: &str) -> anyhow::Result<(SocketAddr, Server)> {
    if let Some(bin) = &args.ingress_bin {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("ingress")
            .env("WA_APP_SECRET", SECRET)
            .env("WA_VERIFY_TOKEN", "bench")
            .env("WA_LISTEN", "127.0.0.1:0")
            .env("AMQP_URL", &args.amqp_url)
            .env("WA_AMQP_PREFIX", prefix)
            .env("WA_PUBLISH_CHANNELS", args.channels.to_string())
            // Only the `listening` line, which says where it accepts webhooks.
            .env("RUST_LOG", "warn,wa_ingress=info");
        // Bound by the child itself on port 0: no port picked here and hoped free.
        let child = Listening::spawn(cmd, CHILD_START).await;
        let addr = child.addr;
        crate::cpu::CHILD.store(
            child.id().unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        return Ok((addr, Server::Child(Box::new(child))));
    }
    let shutdown = CancellationToken::new();
    let mut config = IngressConfig::new(
        vec![SecretString::from(SECRET.to_owned())],
        SecretString::from("bench".to_owned()),
        broker_config(&args.amqp_url, prefix, args.channels)?,
    );
    config.max_body_bytes = 4 * 1024 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(wa_ingress::run(listener, config, shutdown.clone()));
    Ok((addr, Server::InProcess(shutdown, server)))
}

/// What an ingress phase measured.
struct IngressRun {
    closed: Summary,
    open: Option<Summary>,
    peak_rss_kib: Option<u64>,
}

async fn ingress_phase(args: &IngressBench, prefix: &str) -> anyhow::Result<IngressRun> {
    let (addr, server) = start_ingress(args, prefix).await?;

    // Pre-signed, pre-built requests: the load generator spends no time on HMAC or encoding.
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
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
            .collect(),
    );
    let readyz = http1::request("GET", "/readyz", &[], b"");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = match http1::Client::connect(addr).await {
            Ok(mut c) => c.round_trip(&readyz).await.is_ok_and(|s| s == 200),
            Err(_) => false,
        };
        if ready {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "ingress not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        clients.push(tokio::sync::Mutex::new(http1::Client::connect(addr).await?));
    }
    let clients = Arc::new(clients);
    let closed = {
        let (clients, requests) = (clients.clone(), requests.clone());
        closed_loop(args.connections, args.warmup, args.duration, move |t, i| {
            let clients = clients.clone();
            let requests = requests.clone();
            async move {
                let request = &requests[(t * 64 + i) % requests.len()];
                let mut client = clients[t].lock().await;
                client.round_trip(request).await.is_ok_and(|s| s == 200)
            }
        })
        .await
    };
    let open = match args.open_loop {
        Some(fraction) => Some(
            open_loop(
                clients,
                requests,
                closed.rate() * fraction,
                args.warmup,
                args.duration,
            )
            .await,
        ),
        None => None,
    };
    let peak_rss_kib = match &server {
        Server::Child(child) => child.id().and_then(crate::cpu::peak_rss_kib),
        Server::InProcess(..) => None,
    };
    match server {
        Server::InProcess(shutdown, task) => {
            shutdown.cancel();
            task.await.context("ingress task")??;
        }
        Server::Child(mut child) => {
            child.kill().await;
            crate::cpu::CHILD.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(IngressRun {
        closed,
        open,
        peak_rss_kib,
    })
}

/// Offers `rate` requests per second at a fixed pace spread over the connections, for
/// `duration` after `warmup`. Latency runs from each request's scheduled send time, so a slow
/// answer that delays the next request is counted against it (no coordinated omission).
async fn open_loop(
    clients: Arc<Vec<tokio::sync::Mutex<http1::Client>>>,
    requests: Arc<Vec<Vec<u8>>>,
    rate: f64,
    warmup: Duration,
    duration: Duration,
) -> Summary {
    let connections = clients.len();
    let interval = Duration::from_secs_f64(connections as f64 / rate.max(1.0));
    let begin = Instant::now();
    let (start, end) = (begin + warmup, begin + warmup + duration);
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        crate::cpu::Cpu::now()
    });
    let tasks: Vec<_> = (0..connections)
        .map(|t| {
            let (clients, requests) = (clients.clone(), requests.clone());
            tokio::spawn(async move {
                let mut client = clients[t].lock().await;
                // Stagger the connections across one interval.
                let mut next = begin + interval.mul_f64(t as f64 / connections as f64);
                let (mut latencies, mut errors, mut i) = (Vec::new(), 0usize, 0usize);
                while next < end {
                    tokio::time::sleep_until(next.into()).await;
                    let ok = client
                        .round_trip(&requests[(t * 64 + i) % requests.len()])
                        .await
                        .is_ok_and(|s| s == 200);
                    if next >= start {
                        if ok {
                            latencies.push(next.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    next += interval;
                    i += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let cpu = match cpu_at_start.await {
        Ok(at_start) => crate::cpu::Cpu::now().since(at_start),
        Err(_) => crate::cpu::Cpu::default(),
    };
    latencies.sort_unstable();
    Summary {
        ops: latencies.len(),
        errors,
        elapsed: duration,
        latencies,
        cpu,
    }
}

/// Runs the phases and prints the report.
#[allow(clippy::print_stdout)] // The report is the output.
pub async fn run(args: IngressBench) -> anyhow::Result<()> {
    println!(
        "wa-bench ingress: {} connections, {} channels, {:?} per phase (after {:?} warm-up), {} round(s)",
        args.connections, args.channels, args.duration, args.warmup, args.rounds
    );
    let (mut raw_rates, mut ingress_rates) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let prefix = format!("bench{:08x}", rand::random::<u32>());
        let raw = raw_phase(&args, &format!("{prefix}r")).await?;
        cleanup(&args.amqp_url, &Topology::new(format!("{prefix}r"))).await?;
        println!("round {round}: {}", raw.line("raw"));
        let run = ingress_phase(&args, &format!("{prefix}i")).await?;
        cleanup(&args.amqp_url, &Topology::new(format!("{prefix}i"))).await?;
        println!("round {round}: {}", run.closed.line("ingress"));
        if let Some(open) = &run.open {
            println!("round {round}: {}", open.line("open"));
        }
        if let Some(kib) = run.peak_rss_kib {
            println!(
                "round {round}: ingress peak RSS {:.1} MiB",
                kib as f64 / 1024.0
            );
        }
        raw_rates.push(raw.rate());
        ingress_rates.push(run.closed.rate());
    }
    let raw: f64 = raw_rates.iter().sum::<f64>() / raw_rates.len() as f64;
    let ingress: f64 = ingress_rates.iter().sum::<f64>() / ingress_rates.len() as f64;
    println!(
        "ratio ingress/raw = {:.2} ({ingress:.0} / {raw:.0} per second)",
        ingress / raw
    );
    Ok(())
}
