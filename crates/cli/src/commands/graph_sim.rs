//! `wa-onboard graph-sim`: the local Graph API simulator (`wa_graph::sim`) until SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Args;
use secrecy::SecretString;
use wa_graph::sim::SimConfig;

use crate::{flags::AppSecret, secrets, shutdown};

/// `wa-onboard graph-sim`.
#[derive(Debug, Args)]
pub struct GraphSimArgs {
    /// Address to listen on.
    #[arg(long, env = "WA_GRAPH_SIM_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// The app secret: the first of the list keys `appsecret_proof` and the issued tokens.
    #[command(flatten)]
    pub secret: AppSecret,
    /// The partner's system user token; when given, access tokens are checked (strict mode).
    #[arg(long, env = "WA_SYSTEM_USER_TOKEN", hide_env_values = true)]
    pub system_user_token: Option<String>,
    /// File holding the system user token.
    #[arg(long, env = "WA_SYSTEM_USER_TOKEN_FILE")]
    pub system_user_token_file: Option<PathBuf>,
    /// Our app's id: what `debug_token` and `GET subscribed_apps` answer (set it to the
    /// worker's `WA_APP_ID`).
    #[arg(long, env = "WA_APP_ID", default_value = wa_graph::sim::DEFAULT_APP_ID)]
    pub app_id: String,
    /// The next N Graph calls fail transiently (500, code 2, `is_transient`).
    #[arg(long, env = "WA_GRAPH_SIM_FAIL_TRANSIENT", default_value_t = 0)]
    pub fail_transient: u32,
    /// Every Graph call fails permanently (400, code 190) until switched off at `/_sim/mode`.
    #[arg(long, env = "WA_GRAPH_SIM_FAIL_PERMANENT")]
    pub fail_permanent: bool,
}

pub async fn run(args: GraphSimArgs) -> anyhow::Result<ExitCode> {
    let app_secret = args.secret.signing()?;
    // An empty WA_SYSTEM_USER_TOKEN (as a compose file leaves it) means lenient mode.
    let token = args.system_user_token.as_deref().filter(|t| !t.is_empty());
    let system_user_token = match (token, args.system_user_token_file.as_deref()) {
        (None, None) => None,
        (token, file) => Some(SecretString::from(secrets::required(
            token,
            file,
            "WA_SYSTEM_USER_TOKEN",
        )?)),
    };
    let strict = system_user_token.is_some();
    let config = SimConfig {
        app_secret,
        system_user_token,
        app_id: wa_ids::AppId::parse(&args.app_id)
            .context("WA_APP_ID")?
            .to_string(),
        fail_transient: args.fail_transient,
        fail_permanent: args.fail_permanent,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding WA_GRAPH_SIM_LISTEN {}", args.listen))?;
    let local = listener.local_addr().context("WA_GRAPH_SIM_LISTEN")?;
    tracing::info!(role = "graph-sim", addr = %local, strict, fail_transient = config.fail_transient,
        fail_permanent = config.fail_permanent, "listening");
    wa_graph::sim::serve(listener, config, shutdown::on_signal().cancelled_owned())
        .await
        .context("graph-sim")?;
    tracing::info!("graph-sim stopped");
    Ok(ExitCode::SUCCESS)
}
