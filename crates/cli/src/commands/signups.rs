//! `wa-onboard signups funnel [--since DURATION]` and `wa-onboard signups get SESSION_ID`:
//! the Embedded Signup session events the worker recorded, read straight from Redis.
//!
//! - `funnel` prints one JSON object: `started` (sessions seen for the first time),
//!   `finished` (and `finished_by_event`), `cancelled` by `current_step`, `errors` by error
//!   code, and other events by name, over the last `--since` (default `7d`, at most `90d`,
//!   the counters' retention; counted by the hour the ingress received each event, so the
//!   window starts at the top of its first hour).
//! - `get` prints one session's events, oldest first, one JSON object a line
//!   (`{"id", "received_at", "message"}`, `message` being the event as forwarded). A session
//!   is named by the partner page's `launch_id` or by Meta's `session_id` of an error report;
//!   logs are kept 30 days after a session's last event.
//!
//! Neither reads a business token, so neither needs `WA_TOKEN_KEY`.
//!
//! Exit codes: `0` printed; `3` unknown session; `2` a usage error; `1` anything else
//! (Redis unreachable).

use std::{
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use clap::{Args, Subcommand};
use wa_ids::SessionId;
use wa_store::session::FUNNEL_RETENTION;

use crate::{flags::RedisArgs, output};

/// `wa-onboard signups`.
#[derive(Debug, Args)]
pub struct SignupsArgs {
    /// What to look at.
    #[command(subcommand)]
    pub command: SignupsCommand,
}

/// The `signups` subcommands.
#[derive(Debug, Subcommand)]
pub enum SignupsCommand {
    /// Print the signup funnel: started, finished, cancelled by step, errors by code.
    Funnel(FunnelArgs),
    /// Print one session's events, one JSON object a line (exit 3 if unknown).
    Get(GetArgs),
}

/// `signups funnel`.
#[derive(Debug, Args)]
pub struct FunnelArgs {
    /// How far back to count, e.g. `24h`, `7d` (at most `90d`).
    #[arg(long, default_value = "7d", value_parser = since)]
    pub since: Duration,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// `signups get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The session: a `launch_id` set by the partner's page, or Meta's `session_id` (1 to
    /// 128 of `[A-Za-z0-9_.:-]`).
    #[arg(value_name = "SESSION_ID")]
    pub session_id: SessionId,
    #[command(flatten)]
    pub redis: RedisArgs,
}

fn since(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d.is_zero() {
        Err("must be longer than zero".to_owned())
    } else if d > FUNNEL_RETENTION {
        Err("must be at most 90d: older counters are not kept".to_owned())
    } else {
        Ok(d)
    }
}

pub async fn run(args: SignupsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SignupsCommand::Funnel(args) => funnel(args).await,
        SignupsCommand::Get(args) => get(args).await,
    }
}

async fn funnel(args: FunnelArgs) -> anyhow::Result<ExitCode> {
    let store = args.redis.connect().await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let since = now - i64::try_from(args.since.as_secs()).unwrap_or(i64::MAX);
    let funnel = store
        .signup_funnel(since, now)
        .await
        .context("reading the signup funnel")?;
    output::json_pretty(&funnel, "the funnel")?;
    Ok(ExitCode::SUCCESS)
}

async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let store = args.redis.connect().await?;
    let events = store
        .signup_session(&args.session_id)
        .await
        .with_context(|| format!("reading session {}", args.session_id))?;
    if events.is_empty() {
        eprintln!(
            "wa-onboard: unknown signup session {} (or older than 30 days)",
            args.session_id
        );
        return Ok(output::not_found());
    }
    output::json_lines(&events)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_bounded_by_the_retention() {
        assert_eq!(since("24h"), Ok(Duration::from_secs(86_400)));
        assert!(since("90d").is_ok());
        assert!(since("91d").is_err());
        assert!(since("0s").is_err());
        assert!(since("soon").is_err());
    }

    #[test]
    fn session_ids_are_what_the_worker_stores() {
        let parse = |v: &str| {
            GetArgs::augment_args(clap::Command::new("get"))
                .no_binary_name(true)
                .try_get_matches_from([v])
        };
        assert!(parse("f34b51dab5e0498").is_ok());
        assert!(parse("launch:2026-01-01.1").is_ok());
        for bad in ["", "a b", "a{b}"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("SESSION_ID"), "{bad:?}: {err}");
        }
    }
}
