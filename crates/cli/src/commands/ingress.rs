//! `wa-onboard ingress`: builds the configuration and runs the ingress until SIGTERM.

use std::{path::Path, process::ExitCode};

use anyhow::{Context, bail};
use secrecy::SecretString;
use wa_broker::{BrokerConfig, Topology};
use wa_ingress::IngressConfig;

use crate::{args::IngressArgs, secrets, shutdown};

pub async fn run(args: IngressArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = wa_telemetry::init("wa-onboard-ingress")?;
    let app_secrets = secrets::list(
        args.secret.value.as_deref(),
        args.secret.file.as_deref(),
        "WA_APP_SECRET",
    )?;
    let verify_token = secrets::required(
        args.verify_token.as_deref(),
        args.verify_token_file.as_deref(),
        "WA_VERIFY_TOKEN",
    )?;
    let mut broker =
        BrokerConfig::new(&args.amqp.url, Topology::new(args.amqp.prefix)).context("AMQP_URL")?;
    broker.channels = usize::from(args.publish_channels);
    broker.connection_name = "wa-onboard ingress".into();
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
