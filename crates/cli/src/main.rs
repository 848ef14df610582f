//! `wa-onboard`: one binary, one subcommand per role or tool (docs/REFERENCE.md,
//! "Subcommands"). This file parses the command line, starts telemetry, hands over to the
//! command and turns an error into exit code 1; every role lives in a library crate.
//!
//! Modules depend one way: `main` → `cli`, `commands::*`; `cli` → `commands::*`; a command →
//! `flags`, `output`, `progress`, `secrets`, `settings`, `shutdown`; `flags` → `secrets`,
//! `settings`. No command imports another, and the shared modules import no command
//! (`layers.rs` checks it).

mod cli;
mod commands;
mod flags;
#[cfg(test)]
mod layers;
mod output;
mod progress;
mod secrets;
mod settings;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line.
            eprintln!("wa-onboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    // Held until the command returns: dropping it flushes the traces.
    let _telemetry = command
        .telemetry_name()
        .map(wa_telemetry::init)
        .transpose()?;
    match command {
        Command::Ingress(args) => commands::ingress::run(args).await,
        Command::Send(args) => commands::send::run(args).await,
        Command::Worker(args) => commands::worker::run(*args).await,
        Command::Dlq(args) => commands::dlq::run(args).await,
        Command::Reconcile(args) => commands::reconcile::run(args).await,
        Command::Tenants(args) => commands::tenants::run(args).await,
        Command::GraphSim(args) => commands::graph_sim::run(args).await,
        Command::Signups(args) => commands::signups::run(args).await,
        Command::SignupConfig(args) => commands::signup_config::run(&args),
        Command::Api(args) => commands::api::run(args).await,
    }
}
