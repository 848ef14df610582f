//! `wa-onboard api`: the internal HTTP API (docs/REFERENCE.md, "Internal API") on
//! `WA_API_LISTEN`, for the partner's own services, until SIGTERM.
//!
//! Refused at start, with an error naming the variable: a `WA_API_TOKENS` that is missing or
//! breaks its rule, a missing or unusable `WA_TOKEN_KEY` (the token route decrypts), an
//! unreachable Redis, an address that cannot be bound.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Args;
use wa_api::{ApiConfig, Callers};

use crate::{
    flags::{RedisArgs, TokenKeyArgs},
    secrets, shutdown,
};

/// `wa-onboard api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address of the internal API (never the webhook port).
    #[arg(long, env = "WA_API_LISTEN", default_value = "0.0.0.0:8090")]
    pub listen: SocketAddr,
    /// Who may call: comma-separated `name:token` pairs (token at least 16 characters); the
    /// name is who reads, in the audit log and the metrics.
    #[arg(long, env = "WA_API_TOKENS", hide_env_values = true)]
    pub api_tokens: Option<String>,
    /// File holding the API tokens.
    #[arg(long, env = "WA_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
}

pub async fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let tokens = secrets::required(
        args.api_tokens.as_deref(),
        args.api_tokens_file.as_deref(),
        "WA_API_TOKENS",
    )?;
    let callers = Callers::parse(&tokens).context("WA_API_TOKENS")?;
    let key = args.token_key.key()?;
    let vault = args.redis.connect().await?.with_token_key(key);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding WA_API_LISTEN {}", args.listen))?;
    wa_api::run(
        listener,
        ApiConfig::new(callers, vault),
        shutdown::on_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
