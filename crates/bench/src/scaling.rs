//! `wa-bench worker --scaling-bin`: state events and installs per second through 1, 2 and 4
//! `wa-onboard worker` processes, against the single-node services (`AMQP_URL`,
//! `REDIS_URL`) and, with `--cluster-amqp-url` and/or `--cluster-redis-url`, against the
//! RabbitMQ cluster and the Redis Cluster in the same run, printed as one table; then where
//! the CPU went in each phase (workers, broker nodes, Redis nodes, this process, the machine).
//!
//! Each phase queues the same events on a fresh prefix, starts the processes (worker `i`
//! given the node list rotated by `i`, as a load balancer would spread them), and times from
//! their start until every event is counted done. Owns the phases and the tables; the events
//! and the broker come from [`crate::worker`], the CPU readings from [`crate::procs`].

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
    procs::{cpu_of, listeners, machine, ports},
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
    /// The single-node services, then each combination with the clusters `args` names.
    pub(crate) fn all(args: &WorkerBench) -> Vec<Self> {
        let nodes = |urls: &str| urls.split(',').count();
        let mut brokers = vec![("1 RabbitMQ node".to_owned(), args.amqp_url.clone())];
        if let Some(url) = &args.cluster_amqp_url {
            brokers.push((format!("{}-node RabbitMQ cluster", nodes(url)), url.clone()));
        }
        let mut redises = vec![("standalone Redis".to_owned(), args.redis_url.clone())];
        if let Some(url) = &args.cluster_redis_url {
            redises.push((format!("{}-node Redis Cluster", nodes(url)), url.clone()));
        }
        let mut targets = Vec::new();
        for (broker, amqp_url) in &brokers {
            for (redis, redis_url) in &redises {
                targets.push(Self {
                    name: format!("{broker} + {redis}"),
                    amqp_url: amqp_url.clone(),
                    redis_url: redis_url.clone(),
                });
            }
        }
        targets
    }
}

/// What one phase took: its time, and the CPU spent meanwhile.
struct Measured {
    elapsed: Duration,
    /// The worker processes (start-up included).
    workers: Duration,
    /// The processes listening on the target's AMQP ports (`None`: not found, not measured).
    rabbitmq: Option<Duration>,
    /// The processes listening on the target's Redis ports (`None`: not found, not measured).
    redis: Option<Duration>,
    /// This process: the in-process Graph simulator and the polling of the workers' metrics.
    bench: Duration,
    /// The whole machine (other tenants of its cores included).
    machine: Duration,
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
) -> anyhow::Result<Measured> {
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
    let (broker_pids, redis_pids) = (
        listeners(&ports(&target.amqp_url)),
        listeners(&ports(&target.redis_url)),
    );
    let services = || {
        (
            broker_pids.as_deref().map(cpu_of),
            redis_pids.as_deref().map(cpu_of),
        )
    };
    let (rabbitmq_at, redis_at) = services();
    let (bench_at, machine_at) = (crate::cpu::Cpu::now().own, machine());
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
    let pids: Vec<u32> = children.iter().filter_map(Listening::id).collect();
    let (rabbitmq, redis) = services();
    let measured = Measured {
        elapsed,
        workers: cpu_of(&pids),
        rabbitmq: since(rabbitmq, rabbitmq_at),
        redis: since(redis, redis_at),
        bench: crate::cpu::Cpu::now().own.saturating_sub(bench_at),
        machine: machine().saturating_sub(machine_at),
    };
    for mut child in children {
        child.kill().await;
    }
    sim_stop.cancel();
    let _ = sim_task.await;
    stop.cancel();
    cleanup(&target.amqp_url, &topology).await?;
    forget(&target.redis_url, &redis_prefix).await?;
    Ok(measured)
}

/// CPU spent between two readings of the same processes, if both were taken.
fn since(now: Option<Duration>, at: Option<Duration>) -> Option<Duration> {
    Some(now?.saturating_sub(at?))
}

/// One cell of the CPU table: milliseconds per 1,000 events, and cores kept busy; `n/a` for
/// processes that were not measured.
fn cpu_cell(spent: Option<Duration>, events: usize, elapsed: Duration) -> String {
    let Some(spent) = spent else {
        return " n/a |".to_owned();
    };
    let per_1k = spent.as_secs_f64() * 1e6 / events.max(1) as f64;
    let cores = spent.as_secs_f64() / elapsed.as_secs_f64();
    format!(" {per_1k:.0} ms ({cores:.2}) |")
}

/// Every phase, target by target; the rate table, printed as each row completes, then the
/// CPU table (both Markdown).
#[allow(clippy::print_stdout)] // The report is the output.
pub(crate) async fn run(args: &WorkerBench, bin: &Path) -> anyhow::Result<String> {
    let mut table = String::from(
        "| services | events | 1 process | 2 processes | 4 processes |\n\
         |---|---|---:|---:|---:|\n",
    );
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut cpu = format!(
        "CPU per 1,000 events (cores kept busy) on {cores} cores:\n\n\
         | services | events | processes | workers | RabbitMQ | Redis | wa-bench + Graph sim | whole machine |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    print!("{table}");
    for target in Target::all(args) {
        for kind in [Kind::State, Kind::Install] {
            let mut row = format!("| {} | {} |", target.name, kind.label());
            let mut one = 0.0;
            for processes in PROCESSES {
                let m = phase(args, bin, &target, kind, processes).await?;
                let rate = args.events as f64 / m.elapsed.as_secs_f64();
                if processes == 1 {
                    one = rate;
                }
                let _ = write!(row, " {rate:.0}/s (x{:.2}) |", rate / one);
                let _ = write!(cpu, "| {} | {} | {processes} |", target.name, kind.label());
                for spent in [
                    Some(m.workers),
                    m.rabbitmq,
                    m.redis,
                    Some(m.bench),
                    Some(m.machine),
                ] {
                    cpu.push_str(&cpu_cell(spent, args.events, m.elapsed));
                }
                cpu.push('\n');
            }
            println!("{row}");
            table.push_str(&row);
            table.push('\n');
        }
    }
    println!("\n{cpu}");
    table.push('\n');
    table.push_str(&cpu);
    Ok(table)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{cpu_cell, rotated};

    #[test]
    fn a_service_not_measured_reads_n_a_not_zero() {
        let second = Duration::from_secs(1);
        assert_eq!(cpu_cell(None, 1000, second), " n/a |");
        assert_eq!(cpu_cell(Some(second / 2), 1000, second), " 500 ms (0.50) |");
        assert_eq!(
            cpu_cell(Some(Duration::ZERO), 1000, second),
            " 0 ms (0.00) |"
        );
    }

    #[test]
    fn each_worker_starts_its_list_at_another_node() {
        assert_eq!(rotated("a,b,c", 0), "a,b,c");
        assert_eq!(rotated("a, b,c", 1), "b,c,a");
        assert_eq!(rotated("a,b,c", 4), "b,c,a");
        assert_eq!(rotated("a", 3), "a");
    }
}
