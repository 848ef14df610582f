//! `wa-onboard reconcile [--all | WABA_ID...]`: queues a check of each named tenant, or of
//! every installed one, on `wa.tenant_checks`, and exits once the broker confirmed them all.
//! Meant for a Kubernetes CronJob: the workers run the checks.
//!
//! Exit codes: `0` every check queued and confirmed; `2` a usage error (neither `--all` nor
//! an id, or a malformed id); `1` anything else (RabbitMQ or Redis unreachable).

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use clap::{ArgGroup, Args};
use wa_ids::WabaId;

use crate::{
    flags::{AmqpArgs, RedisArgs},
    output,
    progress::Progress,
};

/// `wa-onboard reconcile`.
#[derive(Debug, Args)]
#[command(group = ArgGroup::new("target").required(true).args(["all", "waba_ids"]))]
pub struct ReconcileArgs {
    /// Check every installed tenant.
    #[arg(long, conflicts_with = "waba_ids")]
    pub all: bool,
    /// The tenants to check.
    #[arg(value_name = "WABA_ID", value_parser = parse_waba)]
    pub waba_ids: Vec<WabaId>,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
}

fn parse_waba(value: &str) -> Result<WabaId, String> {
    WabaId::parse(value).map_err(|e| e.to_string())
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let (wabas, reason) = if args.all {
        let store = args.redis.connect().await?;
        let wabas = wa_worker::reconcile::installed_tenants(&store)
            .await
            .context("listing installed tenants (REDIS_URL, WA_REDIS_PREFIX)")?;
        (wabas, "scheduled")
    } else {
        (args.waba_ids, "requested")
    };
    let (broker, shutdown) = args.amqp.connect_once("wa-onboard reconcile").await?;
    let progress = Progress::new("queueing checks");
    let queued = wa_worker::reconcile::queue_checks(&broker, &wabas, reason, |done, total| {
        progress.update(done, total);
    })
    .await
    .context("queueing checks on wa.tenant_checks (AMQP_URL)");
    progress.finish();
    shutdown.cancel();
    let queued = queued?;
    output::write_stdout(|out| writeln!(out, "queued {queued} checks"))?;
    Ok(ExitCode::SUCCESS)
}
