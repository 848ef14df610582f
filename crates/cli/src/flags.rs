//! Flag groups that several commands share (docs/REFERENCE.md, "Variables"): the app secret,
//! where RabbitMQ is, where Redis is, the token key, how to reach Graph. Each flag has an
//! environment variable of the same meaning; secrets may also come from `<VAR>_FILE`.
//!
//! Owns turning a group into the configuration a library crate takes, with errors that name
//! the variable at fault. Never knows which command flattens a group.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use wa_broker::{Broker, BrokerConfig, BrokerError, Topology};
use wa_graph::GraphConfig;
use wa_ids::SystemUserId;
use wa_store::{RedisConfig, Store, TokenKey};

use crate::{
    secrets,
    settings::{self, UNROUTED_TTL_MAX},
};

/// The app secret, given directly or as a file.
#[derive(Debug, Args)]
pub struct AppSecret {
    /// App secret(s), comma-separated; the first signs, any verifies (rotation).
    #[arg(long = "app-secret", env = "WA_APP_SECRET", hide_env_values = true)]
    pub value: Option<String>,
    /// File holding the app secret(s).
    #[arg(long = "app-secret-file", env = "WA_APP_SECRET_FILE")]
    pub file: Option<PathBuf>,
}

impl AppSecret {
    /// Every secret of the list, in order (the first signs, any verifies).
    ///
    /// # Errors
    ///
    /// When `WA_APP_SECRET` (or `_FILE`) is missing, unreadable or holds no secret.
    pub fn all(&self) -> anyhow::Result<Vec<SecretString>> {
        secrets::list(self.value.as_deref(), self.file.as_deref(), "WA_APP_SECRET")
    }

    /// The secret that signs: the first of the list.
    ///
    /// # Errors
    ///
    /// As [`AppSecret::all`].
    pub fn signing(&self) -> anyhow::Result<SecretString> {
        Ok(self.all()?.swap_remove(0))
    }
}

/// `AMQP_URL` when neither it nor `AMQP_URL_FILE` is given.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// `REDIS_URL` when neither it nor `REDIS_URL_FILE` is given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// Where RabbitMQ is.
#[derive(Debug, Args)]
pub struct AmqpArgs {
    /// AMQP URL(s), comma-separated: the nodes of a cluster, tried in turn
    /// [default: amqp://guest:guest@127.0.0.1:5672/%2f].
    #[arg(
        id = "amqp_url",
        long = "amqp-url",
        env = "AMQP_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// File holding the AMQP URL(s) (they may carry a password).
    #[arg(id = "amqp_url_file", long = "amqp-url-file", env = "AMQP_URL_FILE")]
    pub url_file: Option<PathBuf>,
    /// Prefix of every exchange and queue name (`wa` gives `wa.webhooks`, ...).
    #[arg(
        id = "amqp_prefix",
        long = "amqp-prefix",
        env = "WA_AMQP_PREFIX",
        default_value = "wa"
    )]
    pub prefix: String,
    /// Most messages kept in `wa.unrouted` (changes no queue binds); past it, the oldest go.
    #[arg(long, env = "WA_UNROUTED_MAX_LENGTH", default_value_t = wa_broker::UNROUTED_MAX_LENGTH,
          value_parser = settings::count::<u64>("WA_UNROUTED_MAX_LENGTH", 1, 1_000_000_000))]
    pub unrouted_max_length: u64,
    /// Longest a message is kept in `wa.unrouted`.
    #[arg(long, env = "WA_UNROUTED_TTL", default_value = "7d",
          value_parser = settings::duration("WA_UNROUTED_TTL", MINUTE, UNROUTED_TTL_MAX, ""))]
    pub unrouted_ttl: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);

impl AmqpArgs {
    /// The exchanges and queues under `WA_AMQP_PREFIX`, `wa.unrouted` bounded by
    /// `WA_UNROUTED_MAX_LENGTH` and `WA_UNROUTED_TTL`.
    pub fn topology(&self) -> Topology {
        let mut topology = Topology::new(self.prefix.clone());
        topology.unrouted_max_length = self.unrouted_max_length;
        topology.unrouted_ttl = self.unrouted_ttl;
        topology
    }

    /// Declares `config`'s topology once before the role starts: a queue that exists with
    /// other arguments stops the start with RabbitMQ's refusal and what to do. A broker that
    /// does not answer yet is not an error here: the role keeps trying to reach it.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Inequivalent`], naming the queue.
    pub async fn refuse_inequivalent(config: &BrokerConfig) -> anyhow::Result<()> {
        match config.declare_once().await {
            Err(e @ BrokerError::Inequivalent { .. }) => Err(anyhow::Error::new(e).context(
                "declaring the RabbitMQ topology (WA_AMQP_PREFIX, WA_UNROUTED_MAX_LENGTH, \
                     WA_UNROUTED_TTL)",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "broker not reachable at start; retrying in the background");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// For one-shot tools (`dlq`, `reconcile`): declares the topology, then connects with one
    /// channel; the token stops the connection. Any reason the topology cannot be declared
    /// (no broker, a queue with other arguments) is the answer.
    ///
    /// # Errors
    ///
    /// When RabbitMQ cannot be reached at `AMQP_URL` or refuses the topology.
    pub async fn connect_once(
        &self,
        connection_name: &str,
    ) -> anyhow::Result<(Broker, CancellationToken)> {
        let mut config = self.broker(self.topology(), connection_name)?;
        config.channels = 1;
        config
            .declare_once()
            .await
            .context("declaring the RabbitMQ topology at AMQP_URL")?;
        let shutdown = CancellationToken::new();
        let broker = Broker::start(config, shutdown.clone());
        if !broker.wait_ready(Duration::from_secs(15)).await {
            bail!("RabbitMQ is not reachable at AMQP_URL");
        }
        Ok((broker, shutdown))
    }

    /// A broker configuration for `topology`, naming the connection `connection_name` (as
    /// RabbitMQ's management UI shows it).
    ///
    /// # Errors
    ///
    /// When `AMQP_URL` holds no usable URL.
    pub fn broker(
        &self,
        topology: Topology,
        connection_name: &str,
    ) -> anyhow::Result<BrokerConfig> {
        let url = secrets::or_default(
            self.url.as_deref(),
            self.url_file.as_deref(),
            "AMQP_URL",
            DEFAULT_AMQP_URL,
        )?;
        let mut config = BrokerConfig::new(&url, topology).context("AMQP_URL")?;
        config.connection_name = connection_name.to_owned();
        Ok(config)
    }
}

/// Where Redis is, how to reach it, and under which key prefix.
#[derive(Debug, Args)]
pub struct RedisArgs {
    /// Redis URL (`rediss://` for TLS); several, comma-separated, are the seeds of a Redis
    /// Cluster [default: redis://127.0.0.1:6379/0].
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "REDIS_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// File holding the Redis URL(s) (they may carry a password).
    #[arg(id = "redis_url_file", long = "redis-url-file", env = "REDIS_URL_FILE")]
    pub url_file: Option<PathBuf>,
    /// Treat the URL(s) as seeds of a Redis Cluster (implied by several URLs).
    #[arg(long = "redis-cluster", env = "WA_REDIS_CLUSTER", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub cluster: bool,
    /// PEM file of the CA(s) that sign the Redis servers' TLS certificates (`rediss://`);
    /// unset, the system's roots.
    #[arg(long = "redis-ca-file", env = "WA_REDIS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Replicas that must hold each tenant and token write before it counts (`WAIT`, at
    /// most 1 s) [default: 1 on a Redis Cluster, 0 on one Redis].
    #[arg(long = "redis-wait-replicas", env = "WA_REDIS_WAIT_REPLICAS",
          value_parser = settings::count::<u16>("WA_REDIS_WAIT_REPLICAS", 0, 16))]
    pub wait_replicas: Option<u16>,
    /// Prefix of every Redis key.
    #[arg(
        id = "redis_prefix",
        long = "redis-prefix",
        env = "WA_REDIS_PREFIX",
        default_value = "wa:"
    )]
    pub prefix: String,
}

impl RedisArgs {
    /// How to reach Redis: `REDIS_URL` (or `_FILE`), `WA_REDIS_CLUSTER`, `WA_REDIS_CA_FILE`,
    /// `WA_REDIS_WAIT_REPLICAS`.
    ///
    /// # Errors
    ///
    /// When one of them is unusable; the message names the variable and never repeats a
    /// password from `REDIS_URL`.
    pub fn config(&self) -> anyhow::Result<RedisConfig> {
        let url = secrets::or_default(
            self.url.as_deref(),
            self.url_file.as_deref(),
            "REDIS_URL",
            DEFAULT_REDIS_URL,
        )?;
        let mut config = RedisConfig::parse(&url, self.cluster)?;
        if let Some(path) = &self.ca_file {
            if !config.is_tls() {
                bail!(
                    "WA_REDIS_CA_FILE ({}) is for TLS, but REDIS_URL ({}) is not rediss://",
                    path.display(),
                    config.redacted()
                );
            }
            let pem = std::fs::read(path)
                .with_context(|| format!("reading WA_REDIS_CA_FILE ({})", path.display()))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                bail!(
                    "WA_REDIS_CA_FILE ({}) holds no PEM certificate",
                    path.display()
                );
            }
            config = config
                .with_ca(pem)
                .with_context(|| format!("WA_REDIS_CA_FILE ({})", path.display()))?;
        }
        if let Some(replicas) = self.wait_replicas {
            config = config.wait_replicas(replicas);
        }
        Ok(config)
    }

    /// Opens the store (state only, no token key), which must answer.
    ///
    /// # Errors
    ///
    /// As [`RedisArgs::config`], and when Redis is unreachable.
    pub async fn connect(&self) -> anyhow::Result<Store> {
        let config = self.config()?;
        // Over TLS a certificate the CA does not vouch for fails here too.
        let vars = if config.is_tls() {
            "REDIS_URL, WA_REDIS_CA_FILE, WA_REDIS_PREFIX"
        } else {
            "REDIS_URL, WA_REDIS_PREFIX"
        };
        Store::open(&config, &self.prefix)
            .await
            .with_context(|| format!("connecting to Redis at {} ({vars})", config.redacted()))
    }
}

/// The key that encrypts business tokens at rest, for the commands that read or write them.
#[derive(Debug, Args)]
pub struct TokenKeyArgs {
    /// Key encrypting business tokens at rest: 32 bytes, base64 (`openssl rand -base64 32`);
    /// `new,old` during a rotation (the first encrypts, any decrypts).
    #[arg(
        id = "token_key",
        long = "token-key",
        env = "WA_TOKEN_KEY",
        hide_env_values = true
    )]
    pub value: Option<String>,
    /// File holding the token key.
    #[arg(
        id = "token_key_file",
        long = "token-key-file",
        env = "WA_TOKEN_KEY_FILE"
    )]
    pub file: Option<PathBuf>,
}

impl TokenKeyArgs {
    /// `WA_TOKEN_KEY` (or `_FILE`): one key, or `new,old` during a rotation.
    ///
    /// # Errors
    ///
    /// When it is missing or any key in it is unusable.
    pub fn key(&self) -> anyhow::Result<TokenKey> {
        TokenKey::from_base64_list(&secrets::required(
            self.value.as_deref(),
            self.file.as_deref(),
            "WA_TOKEN_KEY",
        )?)
        .context("WA_TOKEN_KEY")
    }
}

/// How to reach Graph, as the partner's system user.
#[derive(Debug, Args)]
pub struct GraphArgs {
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
}

impl GraphArgs {
    /// The Graph client's configuration; `app_secret` keys every `appsecret_proof`.
    ///
    /// # Errors
    ///
    /// When the system user token or id is missing, or the base URL or version is unusable.
    pub fn config(self, app_secret: SecretString) -> anyhow::Result<GraphConfig> {
        let system_user_token = secrets::required(
            self.system_user_token.as_deref(),
            self.system_user_token_file.as_deref(),
            "WA_SYSTEM_USER_TOKEN",
        )?;
        let Some(system_user_id) = self.system_user_id.filter(|s| !s.is_empty()) else {
            bail!("WA_SYSTEM_USER_ID is required");
        };
        let system_user_id =
            SystemUserId::parse(system_user_id.trim()).context("WA_SYSTEM_USER_ID")?;
        let mut graph = GraphConfig::new(
            app_secret,
            system_user_id,
            SecretString::from(system_user_token),
        );
        graph.base = self.graph_base;
        graph.version = self.graph_version;
        graph
            .validate()
            .context("WA_GRAPH_BASE / WA_GRAPH_VERSION")?;
        Ok(graph)
    }
}
