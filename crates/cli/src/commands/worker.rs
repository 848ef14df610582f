//! `wa-onboard worker`: consumes `account_update` events until SIGTERM.

use std::{
    collections::HashSet, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration,
};

use anyhow::{Context, bail};
use clap::{ArgAction, Args};
use secrecy::SecretString;
use wa_broker::{BrokerConfig, Topology};
use wa_graph::GraphConfig;
use wa_ids::{BusinessId, SystemUserId};
use wa_worker::WorkerConfig;

use crate::{
    args::{AmqpArgs, AppSecret, RedisArgs, TokenKeyArgs},
    secrets, shutdown,
};

/// `wa-onboard worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "WA_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    #[command(flatten)]
    pub secret: AppSecret,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
    /// Graph API base URL.
    #[arg(long, env = "WA_GRAPH_BASE", default_value = wa_graph::DEFAULT_BASE)]
    pub graph_base: String,
    /// Graph API version.
    #[arg(long, env = "WA_GRAPH_VERSION", default_value = wa_graph::DEFAULT_VERSION)]
    pub graph_version: String,
    /// The partner's system user id.
    #[arg(long, env = "WA_SYSTEM_USER_ID")]
    pub system_user_id: Option<String>,
    /// The partner's system user access token (`business_management`).
    #[arg(long, env = "WA_SYSTEM_USER_TOKEN", hide_env_values = true)]
    pub system_user_token: Option<String>,
    /// File holding the system user token.
    #[arg(long, env = "WA_SYSTEM_USER_TOKEN_FILE")]
    pub system_user_token_file: Option<PathBuf>,
    /// The partner's own business portfolio ids, comma-separated (never a tenant).
    #[arg(long, env = "WA_PARTNER_BUSINESS_IDS", default_value = "")]
    pub partner_business_ids: String,
    /// Subscribe the app to each installed WABA.
    #[arg(long, env = "WA_SUBSCRIBE_APP", default_value_t = true, action = ArgAction::Set)]
    pub subscribe_app: bool,
    /// Delay tiers before redelivery, comma-separated; after the last, the DLQ.
    #[arg(long, env = "WA_RETRY_DELAYS", default_value = "5s,30s,2m,10m,1h,6h")]
    pub retry_delays: String,
    /// How long a processed change is remembered (longer than Meta's 7-day retries).
    #[arg(long, env = "WA_DEDUPE_TTL", default_value = "8d", value_parser = humantime::parse_duration)]
    pub dedupe_ttl: Duration,
    /// How long a worker's claim on a change lasts before another may take it over.
    #[arg(long, env = "WA_CLAIM_LEASE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub claim_lease: Duration,
    /// Deliveries the broker may push ahead of processing.
    #[arg(long, env = "WA_PREFETCH", default_value_t = 64)]
    pub prefetch: u16,
    /// Messages processed at once.
    #[arg(long, env = "WA_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
}

fn delays(text: &str) -> anyhow::Result<Vec<Duration>> {
    let delays = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| humantime::parse_duration(d).with_context(|| format!("WA_RETRY_DELAYS: `{d}`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if delays.iter().any(Duration::is_zero) {
        bail!("WA_RETRY_DELAYS: a delay must be longer than zero");
    }
    Ok(delays)
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = wa_telemetry::init("wa-onboard-worker")?;
    let app_secret = secrets::list(
        args.secret.value.as_deref(),
        args.secret.file.as_deref(),
        "WA_APP_SECRET",
    )?
    .swap_remove(0);
    let system_user_token = secrets::required(
        args.system_user_token.as_deref(),
        args.system_user_token_file.as_deref(),
        "WA_SYSTEM_USER_TOKEN",
    )?;
    let Some(system_user_id) = args.system_user_id.filter(|s| !s.is_empty()) else {
        bail!("WA_SYSTEM_USER_ID is required");
    };
    let system_user_id = SystemUserId::parse(system_user_id.trim()).context("WA_SYSTEM_USER_ID")?;
    let partner_business_ids = args
        .partner_business_ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(BusinessId::parse)
        .collect::<Result<HashSet<_>, _>>()
        .context("WA_PARTNER_BUSINESS_IDS")?;
    let token_key = crate::commands::tenants::token_key(&args.token_key)?;
    let mut topology = Topology::new(args.amqp.prefix);
    topology.retry_delays = delays(&args.retry_delays)?;
    let mut broker = BrokerConfig::new(&args.amqp.url, topology).context("AMQP_URL")?;
    broker.connection_name = "wa-onboard worker".into();
    broker.channels = 2;
    let mut graph = GraphConfig::new(
        app_secret,
        system_user_id,
        SecretString::from(system_user_token),
    );
    graph.base = args.graph_base;
    graph.version = args.graph_version;
    graph
        .validate()
        .context("WA_GRAPH_BASE / WA_GRAPH_VERSION")?;
    let config = WorkerConfig {
        broker,
        redis_url: args.redis.url,
        redis_prefix: args.redis.prefix,
        token_key,
        graph,
        partner_business_ids,
        subscribe_app: args.subscribe_app,
        dedupe_ttl: args.dedupe_ttl,
        lease: args.claim_lease,
        prefetch: args.prefetch,
        concurrency: usize::from(args.concurrency),
    };
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("binding WA_METRICS_LISTEN {}", args.metrics_listen))?;
    // The address actually bound (port 0 picks one): tests and operators read it here.
    let local = listener.local_addr().context("WA_METRICS_LISTEN")?;
    tracing::info!(role = "worker", addr = %local, "listening");
    wa_worker::run(listener, config, shutdown::on_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
