//! `wa-onboard worker`: consumes `account_update` events, signup session events and tenant
//! checks until SIGTERM.

use std::{collections::HashSet, net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::{ArgAction, Args};
use wa_ids::{AppId, BusinessId};
use wa_worker::WorkerConfig;

use crate::{
    flags::{AmqpArgs, AppSecret, GraphArgs, RedisArgs, TokenKeyArgs},
    settings::{self, META_RETRY_HORIZON, RetryDelays},
    shutdown,
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
    #[command(flatten)]
    pub graph: GraphArgs,
    /// The partner's own business portfolio ids, comma-separated (never a tenant).
    #[arg(long, env = "WA_PARTNER_BUSINESS_IDS", default_value = "")]
    pub partner_business_ids: String,
    /// Subscribe the app to each installed WABA.
    #[arg(long, env = "WA_SUBSCRIBE_APP", default_value_t = true, action = ArgAction::Set)]
    pub subscribe_app: bool,
    /// Delay tiers before redelivery, comma-separated; after the last, the DLQ.
    #[arg(long, env = "WA_RETRY_DELAYS", default_value = "5s,30s,2m,10m,1h,6h",
          value_parser = settings::retry_delays)]
    pub retry_delays: RetryDelays,
    /// How long a processed change is remembered: at least Meta's 7-day retry horizon.
    #[arg(long, env = "WA_DEDUPE_TTL", default_value = "8d",
          value_parser = settings::duration("WA_DEDUPE_TTL", META_RETRY_HORIZON, DAYS_365,
              " (Meta retries a webhook for 7 days; a shorter memory applies a late retry twice)"))]
    pub dedupe_ttl: Duration,
    /// How long a worker's claim on a change lasts before another may take it over.
    #[arg(long, env = "WA_CLAIM_LEASE", default_value = "60s",
          value_parser = settings::duration("WA_CLAIM_LEASE", SECOND, HOUR, ""))]
    pub claim_lease: Duration,
    /// Deliveries one worker process may hold unacknowledged, split between its two queues.
    #[arg(long, env = "WA_PREFETCH", default_value_t = 64,
          value_parser = settings::count::<u16>("WA_PREFETCH", 2, u16::MAX))]
    pub prefetch: u16,
    /// Messages one worker process handles at once, across its two queues.
    #[arg(long, env = "WA_CONCURRENCY", default_value_t = 32,
          value_parser = settings::count::<u16>("WA_CONCURRENCY", 1, 4096))]
    pub concurrency: u16,
    /// The partner's Meta app id: installs and uninstalls naming another app are not applied.
    #[arg(long, env = "WA_APP_ID")]
    pub app_id: Option<String>,
    /// A tenant check fetches a new business token when the held one expires sooner than
    /// this. At least two days: checks run daily, so a shorter window could let a token
    /// expire between two checks.
    #[arg(long, env = "WA_TOKEN_REFRESH_BEFORE", default_value = "7d",
          value_parser = settings::duration("WA_TOKEN_REFRESH_BEFORE", DAYS_2, DAYS_59,
              " (business tokens from the 60-day template would be fetched again at every check)"))]
    pub token_refresh_before: Duration,
}

/// `WA_APP_ID`: required, one Meta object id.
fn app_id(value: Option<&str>) -> anyhow::Result<AppId> {
    let Some(value) = value.map(str::trim).filter(|s| !s.is_empty()) else {
        bail!("WA_APP_ID is required");
    };
    AppId::parse(value).context("WA_APP_ID")
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAYS_365: Duration = Duration::from_secs(365 * 86_400);
/// The shortest refresh window: two daily checks must fall inside it.
const DAYS_2: Duration = Duration::from_secs(2 * 86_400);
const DAYS_59: Duration = Duration::from_secs(59 * 86_400);

pub async fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let app_id = app_id(args.app_id.as_deref())?;
    let app_secret = args.secret.signing()?;
    let graph = args.graph.config(app_secret)?;
    let partner_business_ids = args
        .partner_business_ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(BusinessId::parse)
        .collect::<Result<HashSet<_>, _>>()
        .context("WA_PARTNER_BUSINESS_IDS")?;
    let token_key = args.token_key.key()?;
    let mut topology = args.amqp.topology();
    topology.retry_delays = args.retry_delays.0;
    let mut broker = args.amqp.broker(topology, "wa-onboard worker")?;
    broker.channels = 2;
    AmqpArgs::refuse_inequivalent(&broker).await?;
    let config = WorkerConfig {
        broker,
        redis: args.redis.config()?,
        redis_prefix: args.redis.prefix,
        token_key,
        graph,
        partner_business_ids,
        app_id,
        subscribe_app: args.subscribe_app,
        dedupe_ttl: args.dedupe_ttl,
        lease: args.claim_lease,
        prefetch: args.prefetch,
        concurrency: usize::from(args.concurrency),
        refresh_before: args.token_refresh_before,
        census_interval: wa_worker::CENSUS_INTERVAL,
        census_lease: wa_worker::census_lease(wa_worker::CENSUS_INTERVAL),
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
