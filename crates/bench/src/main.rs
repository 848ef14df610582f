//! `wa-bench`: measures what the ingress promises, next to what RabbitMQ itself can do in the
//! same run on the same machine.
//!
//! `wa-bench ingress` (`ingress.rs`) measures, in one run against the local RabbitMQ, the raw
//! confirmed-publish ceiling, the wa-onboard ingress and any external receiver given as a
//! command (`receiver.rs`), each at full and half load (`load.rs`), with CPU per request and
//! peak RSS from `/proc` (`cpu.rs`), and prints one table (`report.rs`).
//!
//! `wa-bench minimal-receiver` (`minimal.rs`) is the floor measured beside the ingress: a
//! hyper + lapin receiver of the same contract with nothing of wa-onboard's in it.
//!
//! A `wa-onboard` child (`--ingress-bin`, the worker's scaling phase) binds port 0 itself and
//! is read from its `listening` line (`wa_testkit::Listening`), never given a port picked here.

mod cpu;
mod http1;
mod ingress;
mod load;
mod minimal;
mod procs;
mod receiver;
mod reconcile;
mod report;
mod scaling;
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
    /// Signed 1-change webhooks per second through the ingress (and any external receiver)
    /// vs a raw confirmed publisher.
    Ingress(ingress::IngressBench),
    /// State-only account_update events per second through one worker vs a plain consume+ack loop.
    Worker(worker::WorkerBench),
    /// `reconcile --all` over many tenants against graph-sim, checked by 1 and 2 workers.
    Reconcile(reconcile::ReconcileBench),
    /// The floor of this stack, a hyper + lapin receiver measured beside the ingress (a
    /// benchmark reference, not a correct receiver; configured by the environment `wa-bench
    /// ingress` gives a `--receiver`).
    MinimalReceiver,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingress(args) => ingress::run(args).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Reconcile(args) => reconcile::run(args).await,
        Command::MinimalReceiver => minimal::run().await,
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
            format!(", receiver {child:.0} us")
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

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
