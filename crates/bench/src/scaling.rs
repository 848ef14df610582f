//! `wa-bench worker --scaling-bin`: state events and installs per second through 1, 2 and 4
//! `wa-onboard worker` processes, against the single-node services (`AMQP_URL`,
//! `REDIS_URL`) and, with `--cluster-amqp-url`, against the RabbitMQ cluster (and the Redis
//! Cluster of `--cluster-redis-url`) in the same run, printed as one table.
//!
//! Each phase queues the same events on a fresh prefix, starts the processes (worker `i`
//! given the node list rotated by `i`, as a load balancer would spread them), and times from
//! their start until every event is counted done. Owns the phases and the table; the events
//! and the broker come from [`crate::worker`].

use std::{
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use base64::Engine;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use wa_broker::Topology;
use wa_testkit::Listening;

use crate::{
    CHILD_START,
    load::cleanup,
    worker::{Kind, WorkerBench, fill_kind, forget, processed, start_broker},
};

/// Worker processes per phase.
const PROCESSES: [usize; 3] = [1, 2, 4];

/// The services one row of the table runs against.
pub(crate) struct Target {
    /// Its label in the table.
    pub name: String,
    /// `AMQP_URL` (comma-separated nodes for a cluster).
    pub amqp_url: String,
    /// `REDIS_URL` (comma-separated nodes for a Redis Cluster).
    pub redis_url: String,
}

impl Target {
    /// The single-node services, and the clusters when `args` names them.
    pub(crate) fn all(args: &WorkerBench) -> Vec<Self> {
        let mut targets = vec![Self {
            name: "1 RabbitMQ node + standalone Redis".into(),
            amqp_url: args.amqp_url.clone(),
            redis_url: args.redis_url.clone(),
        }];
        if let Some(amqp_url) = &args.cluster_amqp_url {
            let (redis_url, redis) = match &args.cluster_redis_url {
                Some(url) => (url.clone(), "Redis Cluster"),
                None => (args.redis_url.clone(), "standalone Redis"),
            };
            let nodes = amqp_url.split(',').count();
            targets.push(Self {
                name: format!("{nodes}-node RabbitMQ cluster + {redis}"),
                amqp_url: amqp_url.clone(),
                redis_url,
            });
        }
        targets
    }
}

/// `list` (comma-separated) rotated left by `by`.
fn rotated(list: &str, by: usize) -> String {
    let mut items: Vec<&str> = list.split(',').map(str::trim).collect();
    let len = items.len();
    items.rotate_left(by % len);
    items.join(",")
}

/// `events` of `kind` through `processes` worker child processes on `target`; the time from
/// their start until all are processed.
async fn phase(
    args: &WorkerBench,
    bin: &Path,
    target: &Target,
    kind: Kind,
    processes: usize,
) -> anyhow::Result<Duration> {
    let id = format!("{:08x}", rand::random::<u32>());
    let mut topology = Topology::new(format!("benchs{id}"));
    topology.retry_delays = vec![Duration::from_secs(5)];
    let (broker, stop) = start_broker(&target.amqp_url, topology.clone()).await?;
    fill_kind(&broker, args.events, kind).await?;
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = sim_listener.local_addr()?;
    let sim_stop = CancellationToken::new();
    let sim_task = tokio::spawn(wa_graph::sim::serve(
        sim_listener,
        wa_graph::sim::SimConfig::new(SecretString::from("bench".to_owned())),
        sim_stop.clone().cancelled_owned(),
    ));
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let redis_prefix = format!("benchs:{id}:");
    let started = Instant::now();
    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..processes {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("worker")
            .env("WA_APP_SECRET", "bench")
            .env("WA_SYSTEM_USER_ID", "1")
            .env("WA_APP_ID", "1061231232323117")
            .env("WA_SYSTEM_USER_TOKEN", "bench")
            .env("WA_TOKEN_KEY", &key)
            .env("WA_GRAPH_BASE", format!("http://{sim}"))
            .env("WA_METRICS_LISTEN", "127.0.0.1:0")
            .env("WA_AMQP_PREFIX", topology.prefix())
            .env("WA_REDIS_PREFIX", &redis_prefix)
            .env("WA_RETRY_DELAYS", "5s")
            .env("WA_PREFETCH", args.prefetch.to_string())
            .env("WA_CONCURRENCY", args.concurrency.to_string())
            .env("AMQP_URL", rotated(&target.amqp_url, i))
            .env("REDIS_URL", &target.redis_url)
            // Only the `listening` line, which says where its metrics are.
            .env("RUST_LOG", "warn,wa_onboard::commands::worker=info");
        // Bound by the child itself on port 0: no port picked here and hoped free.
        let child = Listening::spawn(cmd, CHILD_START).await;
        endpoints.push(child.addr);
        children.push(child);
    }
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut done = 0;
        for ops in &endpoints {
            done += processed(&client, *ops).await;
        }
        if done >= args.events {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "workers did not finish in 300 s ({done} done)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    for mut child in children {
        child.kill().await;
    }
    sim_stop.cancel();
    let _ = sim_task.await;
    stop.cancel();
    cleanup(&target.amqp_url, &topology).await?;
    forget(&target.redis_url, &redis_prefix).await?;
    Ok(elapsed)
}

/// Every phase, target by target; the table (Markdown), printed as each row completes.
#[allow(clippy::print_stdout)] // The report is the output.
pub(crate) async fn run(args: &WorkerBench, bin: &Path) -> anyhow::Result<String> {
    let mut table = String::from(
        "| services | events | 1 process | 2 processes | 4 processes |\n\
         |---|---|---:|---:|---:|\n",
    );
    print!("{table}");
    for target in Target::all(args) {
        for kind in [Kind::State, Kind::Install] {
            let mut row = format!("| {} | {} |", target.name, kind.label());
            let mut one = 0.0;
            for processes in PROCESSES {
                let elapsed = phase(args, bin, &target, kind, processes).await?;
                let rate = args.events as f64 / elapsed.as_secs_f64();
                if processes == 1 {
                    one = rate;
                }
                let _ = write!(row, " {rate:.0}/s (x{:.2}) |", rate / one);
            }
            println!("{row}");
            table.push_str(&row);
            table.push('\n');
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::rotated;

    #[test]
    fn each_worker_starts_its_list_at_another_node() {
        assert_eq!(rotated("a,b,c", 0), "a,b,c");
        assert_eq!(rotated("a, b,c", 1), "b,c,a");
        assert_eq!(rotated("a,b,c", 4), "b,c,a");
        assert_eq!(rotated("a", 3), "a");
    }
}
