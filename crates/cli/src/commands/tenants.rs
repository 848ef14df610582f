//! `wa-onboard tenants get|list|token|rekey`: reads tenant state straight from Redis.
//!
//! `get` and `list` read state only and need no `WA_TOKEN_KEY`; `token` and `rekey` open the
//! token vault and do.
//!
//! Exit codes: `0` found; `3` unknown WABA (and, for `token`, no token stored); `2` a usage
//! error (clap, a `WABA_ID` that is not one included); `1` anything else (Redis unreachable,
//! a bad `WA_TOKEN_KEY`, a record that cannot be read back).

use std::{
    io::{self, Write},
    process::ExitCode,
};

use anyhow::Context;
use clap::{Args, Subcommand};
use futures_util::TryStreamExt as _;
use secrecy::ExposeSecret;
use wa_ids::WabaId;
use wa_store::{Store, TenantRecord, TokenKey, TokenVault};

use crate::{
    args::{RedisArgs, TokenKeyArgs},
    progress::Progress,
    secrets,
};

/// Exit code of a lookup that found nothing (docs/REFERENCE.md, "Exit codes").
const NOT_FOUND: u8 = 3;

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
    #[command(flatten)]
    pub redis: RedisArgs,
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
    let _telemetry = wa_telemetry::init("wa-onboard-tenants")?;
    match args.command {
        TenantsCommand::Get(args) => get(args).await,
        TenantsCommand::List(args) => list(args).await,
        TenantsCommand::Token(args) => token(args).await,
        TenantsCommand::Rekey(args) => rekey(args).await,
    }
}

async fn get(args: WabaArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.redis).await?;
    let Some(record) = store
        .get(&args.waba_id)
        .await
        .with_context(|| format!("reading tenant {}", args.waba_id))?
    else {
        eprintln!("wa-onboard: unknown WABA {}", args.waba_id);
        return Ok(ExitCode::from(NOT_FOUND));
    };
    let json = serde_json::to_string(&record).context("encoding the tenant record")?;
    write_stdout(|out| writeln!(out, "{json}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = connect(&args.redis).await?;
    let mut records = store.list();
    let mut out = io::BufWriter::new(io::stdout());
    let result = async {
        while let Some(record) = records.try_next().await.context("listing tenants")? {
            if !emit(&mut out, &record)? {
                // The reader went away (`| head`): nothing left to do.
                return Ok(());
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // Print what was read even when the listing failed half-way.
    let flushed = match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    };
    result.and(flushed)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `record` as one line; `false` if stdout is closed.
fn emit(out: &mut impl Write, record: &TenantRecord) -> anyhow::Result<bool> {
    let written = serde_json::to_writer(&mut *out, record)
        .map_err(io::Error::from)
        .and_then(|()| out.write_all(b"\n"));
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
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
        return Ok(ExitCode::from(NOT_FOUND));
    };
    write_stdout(|out| writeln!(out, "{}", token.expose_secret()))?;
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
    write_stdout(|out| {
        writeln!(
            out,
            "rekeyed {} already-current {} changed-meanwhile {} of {} tokens",
            report.rekeyed, report.current, report.raced, report.scanned
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `WA_TOKEN_KEY` (or `_FILE`): one key, or `new,old` during a rotation.
///
/// # Errors
///
/// When it is missing or any key in it is unusable.
pub(crate) fn token_key(args: &TokenKeyArgs) -> anyhow::Result<TokenKey> {
    TokenKey::from_base64_list(&secrets::required(
        args.value.as_deref(),
        args.file.as_deref(),
        "WA_TOKEN_KEY",
    )?)
    .context("WA_TOKEN_KEY")
}

/// Runs `write` on a locked stdout and flushes; a closed stdout is not an error.
fn write_stdout(
    write: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// Opens the token vault: the token key first (no point reaching Redis without it), then
/// the store.
///
/// # Errors
///
/// When `WA_TOKEN_KEY` is missing or unusable, or Redis is unreachable, as for [`connect`].
async fn open_vault(args: &RedisArgs, key: &TokenKeyArgs) -> anyhow::Result<TokenVault> {
    let key = token_key(key)?;
    Ok(connect(args).await?.with_token_key(key))
}

/// Opens the store `args` describe (no token key: state only); Redis must answer.
///
/// # Errors
///
/// When Redis is unreachable; the message names the variables at fault and never repeats a
/// password from `REDIS_URL`.
pub(crate) async fn connect(args: &RedisArgs) -> anyhow::Result<Store> {
    Store::connect(&args.url, &args.prefix)
        .await
        .with_context(|| {
            format!(
                "connecting to Redis at {} (REDIS_URL, WA_REDIS_PREFIX)",
                redacted(&args.url)
            )
        })
}

/// `url` without its credentials, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_only() {
        assert_eq!(
            redacted("redis://:hunter2@redis:6379/0"),
            "redis://***@redis:6379/0"
        );
        assert_eq!(redacted("rediss://user:p@ss@host/1"), "rediss://***@host/1");
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }
}
