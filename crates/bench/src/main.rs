//! `wa-bench`: measures what the ingress promises, next to what RabbitMQ itself can do in the
//! same run on the same machine.
//!
//! `wa-bench ingress` runs two phases against the local RabbitMQ, each on a fresh topology
//! prefix and for the same duration and concurrency:
//!
//! 1. **raw**: a plain lapin publisher, the same pool of confirm channels, `--connections`
//!    tasks each publishing one ~1 KiB persistent message to the webhooks exchange and waiting
//!    for its confirm: the ceiling.
//! 2. **ingress**: the real ingress on port 0, and `--connections` keep-alive HTTP/1 clients
//!    each POSTing pre-signed one-change webhooks (pre-built requests on a minimal client)
//!    and waiting for the `200`.
//!
//! It prints requests per second, p50/p99/max latency, and the ratio ingress/raw.
//!
//! A `wa-onboard` child (`--ingress-bin`, the worker's scaling phase) binds port 0 itself and
//! is read from its `listening` line (`wa_testkit::Listening`), never given a port picked here.

mod cpu;
mod http1;
mod load;
mod reconcile;
mod worker;

use std::time::Duration;

use clap::{Parser, Subcommand};

/// How long a `wa-onboard` child may take to say where it listens.
pub(crate) const CHILD_START: Duration = Duration::from_secs(30);

/// Benchmarks for wa-onboard.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signed 1-change webhooks per second through the ingress vs a raw confirmed publisher.
    Ingress(load::IngressBench),
    /// State-only account_update events per second through one worker vs a plain consume+ack loop.
    Worker(worker::WorkerBench),
    /// `reconcile --all` over many tenants against graph-sim, checked by 1 and 2 workers.
    Reconcile(reconcile::ReconcileBench),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingress(args) => load::run(args).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Reconcile(args) => reconcile::run(args).await,
    }
}

/// Latency summary of one phase.
pub struct Summary {
    /// Completed operations.
    pub ops: usize,
    /// Failed operations.
    pub errors: usize,
    /// Measured wall time.
    pub elapsed: Duration,
    /// Sorted latencies.
    pub latencies: Vec<Duration>,
    /// CPU used during the measured window.
    pub cpu: cpu::Cpu,
}

impl Summary {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of latency.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[index]
    }

    /// One line for the report.
    pub fn line(&self, name: &str) -> String {
        let (own, broker, child) = self.cpu.per_op(self.ops);
        let child = if child > 0.0 {
            format!(", ingress process {child:.0} us")
        } else {
            String::new()
        };
        format!(
            "{name:<8} {:>9.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   ok {} errors {}   cpu/op: bench process {own:.0} us{child}, rabbitmq {broker:.0} us",
            self.rate(),
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.ops,
            self.errors
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
