//! `wa-onboard tenants get|list|token|rekey`: reads tenant state straight from Redis.
//!
//! `get` and `list` read state only and need no `WA_TOKEN_KEY`; `token` and `rekey` open the
//! token vault and do.
//!
//! Exit codes: `0` found; `3` unknown WABA (and, for `token`, no token stored); `2` a usage
//! error (clap, a `WABA_ID` that is not one included); `1` anything else (Redis unreachable,
//! a bad `WA_TOKEN_KEY`, a record that cannot be read back).

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use clap::{Args, Subcommand};
use futures_util::TryStreamExt as _;
use secrecy::ExposeSecret;
use wa_ids::WabaId;
use wa_store::{Attention, TokenVault};

use crate::{
    flags::{RedisArgs, TokenKeyArgs},
    output::{self, JsonLines},
    progress::Progress,
};

/// `wa-onboard tenants`.
#[derive(Debug, Args)]
pub struct TenantsArgs {
    /// What to look at.
    #[command(subcommand)]
    pub command: TenantsCommand,
}

/// The `tenants` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Print one tenant's record as JSON (exit 3 if the WABA is unknown).
    Get(WabaArgs),
    /// Print every tenant's record, one JSON object a line, in no particular order.
    List(ListArgs),
    /// Print a tenant's decrypted business token (exit 3 if there is none).
    Token(TokenArgs),
    /// Re-encrypt every stored token under the first key of WA_TOKEN_KEY (rotation: run
    /// with `WA_TOKEN_KEY=new,old`, as the workers, then drop `old`).
    Rekey(RekeyArgs),
}

/// A command about one tenant's state.
#[derive(Debug, Args)]
pub struct WabaArgs {
    /// The tenant's WhatsApp Business Account id (1 to 32 digits).
    #[arg(value_name = "WABA_ID")]
    pub waba_id: WabaId,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// `tenants token`: one tenant's business token.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub tenant: WabaArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
}

/// `tenants list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tenants whose `attention` lists this (`token_invalid`, `token_expiring`,
    /// `not_subscribed`).
    #[arg(long, value_parser = parse_attention)]
    pub attention: Option<Attention>,
    #[command(flatten)]
    pub redis: RedisArgs,
}

fn parse_attention(value: &str) -> Result<Attention, String> {
    Attention::parse(value).ok_or_else(|| {
        let known: Vec<&str> = Attention::ALL.iter().map(|a| a.as_str()).collect();
        format!("one of {}", known.join(", "))
    })
}

/// `tenants rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
}

pub async fn run(args: TenantsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TenantsCommand::Get(args) => get(args).await,
        TenantsCommand::List(args) => list(args).await,
        TenantsCommand::Token(args) => token(args).await,
        TenantsCommand::Rekey(args) => rekey(args).await,
    }
}

async fn get(args: WabaArgs) -> anyhow::Result<ExitCode> {
    let store = args.redis.connect().await?;
    let Some(record) = store
        .get(&args.waba_id)
        .await
        .with_context(|| format!("reading tenant {}", args.waba_id))?
    else {
        eprintln!("wa-onboard: unknown WABA {}", args.waba_id);
        return Ok(output::not_found());
    };
    output::json_line(&record, "the tenant record")?;
    Ok(ExitCode::SUCCESS)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.redis.connect().await?;
    let mut records = store.list();
    let mut out = JsonLines::stdout();
    let result = async {
        while let Some(record) = records.try_next().await.context("listing tenants")? {
            if args
                .attention
                .is_some_and(|wanted| !record.attention.contains(&wanted))
            {
                continue;
            }
            if !out.push(&record)? {
                // The reader went away (`| head`): nothing left to do.
                return Ok(());
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // Print what was read even when the listing failed half-way.
    let flushed = out.finish();
    result.and(flushed)?;
    Ok(ExitCode::SUCCESS)
}

async fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let vault = open_vault(&args.tenant.redis, &args.token_key).await?;
    let store = vault.store();
    let waba_id = &args.tenant.waba_id;
    let token = vault
        .token(waba_id)
        .await
        .with_context(|| format!("reading the business token of {waba_id}"))?;
    let Some(token) = token else {
        // Say why: an unknown WABA, or a tenant whose token is pending, failed or revoked.
        match store.get(waba_id).await {
            Ok(None) => eprintln!("wa-onboard: unknown WABA {waba_id}"),
            Ok(Some(record)) => {
                let status = record.token.status.map_or("none", |s| s.as_str());
                eprintln!(
                    "wa-onboard: no business token stored for WABA {waba_id} (tenant {}, \
                     token status {status})",
                    record.status.as_str()
                );
            }
            Err(_) => eprintln!("wa-onboard: no business token stored for WABA {waba_id}"),
        }
        return Ok(output::not_found());
    };
    output::write_stdout(|out| writeln!(out, "{}", token.expose_secret()))?;
    Ok(ExitCode::SUCCESS)
}

async fn rekey(args: RekeyArgs) -> anyhow::Result<ExitCode> {
    let vault = open_vault(&args.redis, &args.token_key).await?;
    let progress = Progress::new("rekeying");
    let report = vault
        .rekey(|done, total| progress.update(done, total))
        .await
        .context("rekeying business tokens")?;
    progress.finish();
    output::write_stdout(|out| {
        writeln!(
            out,
            "rekeyed {} already-current {} changed-meanwhile {} of {} tokens",
            report.rekeyed, report.current, report.raced, report.scanned
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the token vault: the token key first (no point reaching Redis without it), then
/// the store.
///
/// # Errors
///
/// When `WA_TOKEN_KEY` is missing or unusable, or Redis is unreachable.
async fn open_vault(redis: &RedisArgs, key: &TokenKeyArgs) -> anyhow::Result<TokenVault> {
    let key = key.key()?;
    Ok(redis.connect().await?.with_token_key(key))
}
