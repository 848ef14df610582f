//! `wa-onboard ingress`: builds the configuration and runs the ingress until SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
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
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding WA_LISTEN {}", args.listen))?;
    wa_ingress::run(listener, config, shutdown::on_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
