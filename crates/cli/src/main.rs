//! `wa-onboard`: one binary, one subcommand per role or tool. This file only parses flags,
//! starts telemetry and hands over; every role lives in a library crate.

mod args;
mod commands;
mod progress;
mod secrets;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ingress(args) => commands::ingress::run(args).await,
        Command::Send(args) => commands::send::run(args).await,
        Command::Worker(args) => commands::worker::run(*args).await,
        Command::Dlq(args) => commands::dlq::run(args).await,
        Command::Tenants(args) => commands::tenants::run(args).await,
        Command::GraphSim(args) => commands::graph_sim::run(args).await,
        Command::Signups(args) => commands::signups::run(args).await,
        Command::SignupConfig(args) => commands::signup_config::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line.
            eprintln!("wa-onboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}
