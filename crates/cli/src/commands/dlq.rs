//! `wa-onboard dlq list|replay`: what is in the dead-letter queue, and re-driving it.
//!
//! Exit codes: `0` done; `3` no dead letter with the id given to `replay`; `2` a usage error;
//! `1` anything else (RabbitMQ unreachable).

use std::{io::Write, process::ExitCode};

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::{flags::AmqpArgs, output, progress::Progress};

/// `wa-onboard dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    #[command(flatten)]
    pub amqp: AmqpArgs,
}

/// What to do with the dead-letter queue.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// One JSON line per dead letter: id, routing key, reason, attempts, body.
    List,
    /// Re-publish dead letters to their original routing key, then remove them.
    Replay {
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// The id (dedupe key) of the one dead letter to replay.
        id: Option<String>,
    },
}

pub async fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    let (broker, shutdown) = args.amqp.connect_once("wa-onboard dlq").await?;
    let code = match args.command {
        DlqCommand::List => {
            output::json_lines(wa_worker::dlq::list(&broker).await?)?;
            ExitCode::SUCCESS
        }
        DlqCommand::Replay { all, id } => {
            if !all && id.is_none() {
                bail!("say which: `dlq replay --all` or `dlq replay ID`");
            }
            let progress = Progress::new("replaying");
            let result = wa_worker::dlq::replay(&broker, id.as_deref(), |done, total| {
                progress.update(done, total);
            })
            .await?;
            progress.finish();
            output::write_stdout(|out| {
                writeln!(out, "replayed {} kept {}", result.replayed, result.kept)
            })?;
            if id.is_some() && result.replayed == 0 {
                eprintln!("no dead letter with that id");
                output::not_found()
            } else {
                ExitCode::SUCCESS
            }
        }
    };
    shutdown.cancel();
    Ok(code)
}
