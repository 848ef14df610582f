//! `wa-bench reconcile`: `wa-onboard reconcile --all` over many installed tenants against
//! graph-sim, then 1 and 2 `wa-onboard worker` processes checking them all.
//!
//! Each phase starts afresh (its own topology prefix, Redis prefix and simulator): the
//! tenants are written straight into Redis (installed, a token held, expiry never), then the
//! release binary's `reconcile --all` is timed from start to exit (listing the tenants and
//! publishing one confirmed check each), then the workers are timed from their start until
//! their `wa_worker_tenant_checks_total` adds up to the tenant count. The Graph calls per
//! tenant are the simulator's counters (`GET /_sim/calls`) over the tenant count.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use base64::Engine;
use clap::Args;
use futures_util::{StreamExt, TryStreamExt};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use wa_broker::Topology;
use wa_ids::{AppId, BusinessId, WabaId};
use wa_store::{Install, Store, TokenExpiry};
use wa_testkit::Listening;

use crate::{CHILD_START, load::cleanup, worker::forget};

const APP_ID: &str = "1061231232323117";

/// Options of `wa-bench reconcile`.
#[derive(Args)]
pub struct ReconcileBench {
    /// Installed tenants to check.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// The `wa-onboard` binary (a release build) that runs `reconcile` and the workers.
    #[arg(long)]
    bin: PathBuf,
    /// Worker process counts to measure, one phase each.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
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

/// What one phase measured.
struct Phase {
    queue: Duration,
    check: Duration,
    graph_calls: u64,
}

/// Writes `n` installed tenants with a token held, 64 at a time.
async fn seed(store: &Store, key: &wa_store::TokenKey, n: usize) -> anyhow::Result<()> {
    let vault = store.with_token_key(key.clone());
    futures_util::stream::iter(0..n)
        .map(|i| {
            let (store, vault) = (store.clone(), vault.clone());
            async move {
                let waba_id = WabaId::parse(&(300_000_000_000_000usize + i).to_string())?;
                let install = Install {
                    waba_id: waba_id.clone(),
                    owner_business_id: BusinessId::parse(
                        &(400_000_000_000_000usize + i).to_string(),
                    )?,
                    partner_app_id: Some(AppId::parse(APP_ID)?),
                    solution_id: None,
                    solution_partner_business_ids: Vec::new(),
                    event_time: 1_763_900_000,
                };
                store.apply_install(&install).await?;
                let token = SecretString::from(format!("bench-token-{i}"));
                let expiry = TokenExpiry {
                    expires_at: 0,
                    checked_at: 1_763_900_000,
                };
                vault
                    .store_checked_token(&waba_id, &token, 1, 1_763_900_000, Some(expiry))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
}

/// Sum of `wa_worker_tenant_checks_total` at one worker's metrics endpoint (busy and retried
/// checks are not finished ones).
async fn checked(client: &reqwest::Client, ops: std::net::SocketAddr) -> usize {
    let text = match client.get(format!("http://{ops}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter(|l| l.starts_with("wa_worker_tenant_checks_total{"))
        .filter(|l| !l.contains("\"busy\"") && !l.contains("\"retry\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize
}

fn command(
    bin: &Path,
    args: &ReconcileBench,
    topology: &Topology,
    redis: &str,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env("WA_AMQP_PREFIX", topology.prefix())
        .env("WA_REDIS_PREFIX", redis)
        .env("AMQP_URL", &args.amqp_url)
        .env("REDIS_URL", &args.redis_url)
        .env("RUST_LOG", "warn");
    cmd
}

async fn phase(args: &ReconcileBench, processes: usize) -> anyhow::Result<Phase> {
    let id = format!("{:08x}", rand::random::<u32>());
    let mut topology = Topology::new(format!("benchr{id}"));
    topology.retry_delays = vec![Duration::from_secs(5)];
    let redis_prefix = format!("benchr:{id}:");
    let key_text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let key = wa_store::TokenKey::from_base64(&key_text)?;
    let store = Store::connect(&args.redis_url, &redis_prefix).await?;
    seed(&store, &key, args.tenants).await?;

    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = sim_listener.local_addr()?;
    let sim_stop = CancellationToken::new();
    let sim_task = tokio::spawn(wa_graph::sim::serve(
        sim_listener,
        wa_graph::sim::SimConfig {
            app_id: APP_ID.to_owned(),
            ..wa_graph::sim::SimConfig::new(SecretString::from("bench".to_owned()))
        },
        sim_stop.clone().cancelled_owned(),
    ));

    let started = Instant::now();
    let out = command(&args.bin, args, &topology, &redis_prefix)
        .args(["reconcile", "--all"])
        .output()
        .await?;
    let queue = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "reconcile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..processes {
        let mut cmd = command(&args.bin, args, &topology, &redis_prefix);
        cmd.arg("worker")
            .env("WA_APP_SECRET", "bench")
            .env("WA_SYSTEM_USER_ID", "1")
            .env("WA_APP_ID", APP_ID)
            .env("WA_SYSTEM_USER_TOKEN", "bench")
            .env("WA_TOKEN_KEY", &key_text)
            .env("WA_GRAPH_BASE", format!("http://{sim}"))
            .env("WA_METRICS_LISTEN", "127.0.0.1:0")
            .env("WA_RETRY_DELAYS", "5s")
            .env("RUST_LOG", "warn,wa_onboard::commands::worker=info");
        children.push(Listening::spawn(cmd, CHILD_START).await);
    }
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut done = 0;
        for child in &children {
            done += checked(&client, child.addr).await;
        }
        if done >= args.tenants {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "checks not done in 600 s ({done} done)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let check = started.elapsed();
    let calls: serde_json::Value = client
        .get(format!("http://{sim}/_sim/calls?route=none"))
        .send()
        .await?
        .json()
        .await?;
    let graph_calls = [
        "system_user_access_tokens",
        "debug_token",
        "subscribed_apps",
        "subscribed_apps_list",
        "phone_numbers",
        "not_found",
    ]
    .iter()
    .filter_map(|k| calls["calls"][k].as_u64())
    .sum();
    for mut child in children {
        child.kill().await;
    }
    sim_stop.cancel();
    let _ = sim_task.await;
    cleanup(&args.amqp_url, &topology).await?;
    forget(&args.redis_url, &redis_prefix).await?;
    Ok(Phase {
        queue,
        check,
        graph_calls,
    })
}

/// Runs one phase per worker count and prints the report.
#[allow(clippy::print_stdout)] // The report is the output.
pub async fn run(args: ReconcileBench) -> anyhow::Result<()> {
    println!(
        "wa-bench reconcile: {} installed tenants against graph-sim, {}",
        args.tenants,
        args.bin.display()
    );
    for &processes in &args.workers {
        let p = phase(&args, processes).await?;
        println!(
            "  {processes} worker process(es): reconcile --all queued {} checks in {:.2} s \
             ({:.0}/s); checked all in {:.2} s ({:.0} tenants/s); Graph calls per tenant {:.2}",
            args.tenants,
            p.queue.as_secs_f64(),
            args.tenants as f64 / p.queue.as_secs_f64(),
            p.check.as_secs_f64(),
            args.tenants as f64 / p.check.as_secs_f64(),
            p.graph_calls as f64 / args.tenants as f64,
        );
    }
    Ok(())
}
