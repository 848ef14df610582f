//! `wa-onboard ingress`: builds the configuration and runs the ingress until SIGTERM.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::Args;
use secrecy::SecretString;
use wa_ingress::IngressConfig;

use crate::{
    flags::{AmqpArgs, AppSecret},
    secrets, settings, shutdown,
};

/// `wa-onboard ingress`.
#[derive(Debug, Args)]
pub struct IngressArgs {
    /// Address to listen on.
    #[arg(long, env = "WA_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub secret: AppSecret,
    /// Token Meta echoes in the subscription handshake.
    #[arg(long, env = "WA_VERIFY_TOKEN", hide_env_values = true)]
    pub verify_token: Option<String>,
    /// File holding the verify token.
    #[arg(long, env = "WA_VERIFY_TOKEN_FILE")]
    pub verify_token_file: Option<PathBuf>,
    /// Largest webhook body accepted, in bytes (Meta sends up to 3 MB).
    #[arg(long, env = "WA_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024,
          value_parser = settings::count::<u64>("WA_MAX_BODY_BYTES", 1024, 64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Publisher-confirm channels the deliveries are spread over, each shared by any number.
    #[arg(long, env = "WA_PUBLISH_CHANNELS", default_value_t = wa_ingress::PUBLISH_CHANNELS,
          value_parser = settings::count::<u16>("WA_PUBLISH_CHANNELS", 1, 256))]
    pub publish_channels: u16,
    /// Most client connections open at once; past it a new one is closed unread.
    #[arg(long, env = "WA_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = settings::count::<u32>("WA_MAX_CONNECTIONS", 1, 65536))]
    pub max_connections: u32,
    /// Most bytes of webhook bodies held, across every request, before their signature is
    /// checked (at least WA_MAX_BODY_BYTES); past it a delivery gets 503 with Retry-After.
    #[arg(long, env = "WA_MAX_UNVERIFIED_BYTES", default_value_t = 64 * 1024 * 1024,
          value_parser = settings::count::<u64>("WA_MAX_UNVERIFIED_BYTES", 1024, 1024 * 1024 * 1024))]
    pub max_unverified_bytes: u64,
    /// Bearer the partner's backend sends with Embedded Signup session events
    /// (`POST /v1/signup-events`); unset, the route is off. At least 16 characters.
    #[arg(long, env = "WA_SIGNUP_API_TOKEN", hide_env_values = true)]
    pub signup_api_token: Option<String>,
    /// File holding the signup API token.
    #[arg(long, env = "WA_SIGNUP_API_TOKEN_FILE")]
    pub signup_api_token_file: Option<PathBuf>,
}

pub async fn run(args: IngressArgs) -> anyhow::Result<ExitCode> {
    let app_secrets = args.secret.all()?;
    let verify_token = secrets::required(
        args.verify_token.as_deref(),
        args.verify_token_file.as_deref(),
        "WA_VERIFY_TOKEN",
    )?;
    let mut broker = args
        .amqp
        .broker(args.amqp.topology(), "wa-onboard ingress")?;
    broker.channels = usize::from(args.publish_channels);
    AmqpArgs::refuse_inequivalent(&broker).await?;
    let mut config = IngressConfig::new(app_secrets, SecretString::from(verify_token), broker);
    config.max_body_bytes = usize::try_from(args.max_body_bytes).context("WA_MAX_BODY_BYTES")?;
    config.max_connections = usize::try_from(args.max_connections).context("WA_MAX_CONNECTIONS")?;
    config.max_unverified_bytes =
        usize::try_from(args.max_unverified_bytes).context("WA_MAX_UNVERIFIED_BYTES")?;
    // wa_ingress::run refuses bounds that cannot work, naming the variable.
    config.signup_api_token = signup_api_token(
        args.signup_api_token.as_deref(),
        args.signup_api_token_file.as_deref(),
    )?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding WA_LISTEN {}", args.listen))?;
    wa_ingress::run(listener, config, shutdown::on_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The shortest signup API token accepted: it is a shared secret between two backends.
const MIN_SIGNUP_TOKEN_LEN: usize = 16;

/// `WA_SIGNUP_API_TOKEN` (or `_FILE`); `None` when neither is set (or it is empty): the
/// `/v1/signup-events` route is off.
fn signup_api_token(
    value: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<Option<SecretString>> {
    let given = value.filter(|t| !t.is_empty());
    if given.is_none() && file.is_none() {
        return Ok(None);
    }
    let token = secrets::required(given, file, "WA_SIGNUP_API_TOKEN")?;
    if token.chars().count() < MIN_SIGNUP_TOKEN_LEN || token.chars().any(char::is_whitespace) {
        bail!(
            "WA_SIGNUP_API_TOKEN must be at least {MIN_SIGNUP_TOKEN_LEN} characters, without \
             white space (e.g. `openssl rand -hex 32`)"
        );
    }
    Ok(Some(SecretString::from(token)))
}
