//! The one connection the store talks through, whatever Redis is behind it: one server (a
//! reconnecting [`ConnectionManager`]) or a Redis Cluster (the redis crate's own cluster
//! client, which follows `MOVED`/`ASK` and refreshes its slot map after a failover), plain
//! (`redis://`) or TLS (`rediss://`), from [`RedisConfig`] (`REDIS_URL`, `WA_REDIS_CLUSTER`,
//! `WA_REDIS_CA_FILE`, `WA_REDIS_WAIT_REPLICAS`: docs/REFERENCE.md, "Variables").
//!
//! [`Conn`] is a [`ConnectionLike`], so every command and script of the store runs on it
//! unchanged (on a cluster, each is routed by its keys' hash tag). What differs by kind is
//! here and only here: the list of primaries a scan must visit ([`Conn::primaries`]), a
//! command sent to one of them ([`Conn::on_primary`]), reads of keys in different slots
//! ([`Conn::each`]). Waiting for replicas is [`crate::durable`]'s.
//!
//! It knows nothing of keys' meaning or of any record.

use std::{collections::HashMap, fmt, time::Duration};

use futures_util::future::try_join_all;
use redis::{
    Client, Cmd, FromRedisValue, IntoConnectionInfo as _, RedisFuture, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{
        MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
    },
};

use crate::{Result, StoreError};

/// How long to wait for a TCP (and TLS) connection to a node before reporting a transient
/// error.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for any reply (a page of `SCAN` + `HGETALL` included).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection attempts per (re)connection before a call fails: with backoff from 100 ms,
/// capped at 1 s, a call made while Redis is down fails after about 2 s, so the worker can
/// requeue the message instead of holding it.
const CONNECT_ATTEMPTS: usize = 4;
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// On a cluster, attempts of one command across redirections and a failover (the slot map is
/// refreshed between them), waiting 100 ms to 1 s: enough for `MOVED` and a promotion
/// already decided; a longer failover fails the call as transient.
const CLUSTER_RETRIES: u32 = 6;
/// How long a write waits for its replicas (`WAIT`) before it counts as not durable.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where Redis is and how to talk to it.
#[derive(Clone)]
pub struct RedisConfig {
    urls: Vec<String>,
    cluster: bool,
    ca: Option<Vec<u8>>,
    wait_replicas: u16,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redacted(u)).collect::<Vec<_>>(),
            )
            .field("cluster", &self.cluster)
            .field("ca", &self.ca.is_some())
            .field("wait_replicas", &self.wait_replicas)
            .finish()
    }
}

impl RedisConfig {
    /// `REDIS_URL`: one URL (`redis://` or `rediss://` for TLS), or several comma-separated
    /// node URLs, which mean a Redis Cluster (as does `cluster`: the URL(s) are then its seeds).
    /// On a cluster every write of tenant state and tokens waits for one replica (`WAIT 1`,
    /// see [`RedisConfig::wait_replicas`]); on one server none.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidInput`] (`what` = `REDIS_URL`, the URL without its password) for
    /// an empty list, a URL the redis crate cannot read, a cluster seed that is not TCP, or a
    /// cluster whose seeds mix TLS and plain.
    pub fn parse(urls: &str, cluster: bool) -> Result<Self> {
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let invalid = |url: &str, reason: &'static str| StoreError::InvalidInput {
            what: "REDIS_URL",
            value: redacted(url),
            reason,
        };
        if urls.is_empty() {
            return Err(invalid("", "names no Redis"));
        }
        for url in &urls {
            if url.as_str().into_connection_info().is_err() {
                return Err(invalid(
                    url,
                    "is not a Redis URL (redis://host:port/db or rediss:// for TLS)",
                ));
            }
        }
        let cluster = cluster || urls.len() > 1;
        if cluster {
            for url in &urls {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    return Err(invalid(
                        url,
                        "a Redis Cluster seed must be redis:// or rediss://",
                    ));
                }
            }
            if urls
                .iter()
                .any(|u| u.starts_with("rediss://") != urls[0].starts_with("rediss://"))
            {
                return Err(invalid(
                    &urls.join(","),
                    "mixes rediss:// and redis:// seeds",
                ));
            }
        }
        Ok(Self {
            urls,
            cluster,
            ca: None,
            wait_replicas: u16::from(cluster),
        })
    }

    /// Trusts `pem` (one or more PEM certificates, `WA_REDIS_CA_FILE`) for `rediss://`
    /// instead of the system's roots.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidInput`] (`what` = `WA_REDIS_CA_FILE`) when the TLS client cannot
    /// read a certificate from `pem`: refused here, not at every connection attempt.
    pub fn with_ca(mut self, pem: Vec<u8>) -> Result<Self> {
        self.ca = Some(pem);
        if let Some(certs) = self.certificates() {
            Client::build_with_tls(self.urls[0].as_str(), certs).map_err(|e| {
                StoreError::InvalidInput {
                    what: "WA_REDIS_CA_FILE",
                    value: e.to_string(),
                    reason: "holds no certificate the TLS client can read",
                }
            })?;
        }
        Ok(self)
    }

    /// Every write of tenant state and tokens waits until `replicas` replicas hold it
    /// (`WAIT replicas`, at most [`WAIT_TIMEOUT`]); fewer is a
    /// [transient](StoreError::is_transient) [`StoreError::NotReplicated`]. `0` waits for
    /// nothing (`WA_REDIS_WAIT_REPLICAS`).
    #[must_use]
    pub fn wait_replicas(mut self, replicas: u16) -> Self {
        self.wait_replicas = replicas;
        self
    }

    /// Whether this is a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Whether every URL is `rediss://` (TLS): a CA file means nothing otherwise.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.urls.iter().all(|u| u.starts_with("rediss://"))
    }

    /// The URLs, passwords replaced by `***`, for messages.
    #[must_use]
    pub fn redacted(&self) -> String {
        self.urls
            .iter()
            .map(|u| redacted(u))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn certificates(&self) -> Option<TlsCertificates> {
        self.ca.as_ref().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }
}

/// `url` without its credentials, for messages: the user information before `@`, and the
/// query, where the redis crate also reads a password (`?pass=`).
#[must_use]
pub fn redacted(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((before, _)) => (before, "?***"),
        None => (url, ""),
    };
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}{query}", &url[at + 1..]),
        _ => format!("{url}{query}"),
    }
}

/// A connection to one Redis or to a Redis Cluster. Cheap to clone; clones share the
/// multiplexed connection(s).
#[derive(Clone)]
pub(crate) struct Conn {
    link: Link,
    wait_replicas: u16,
    /// `REDIS_URL` without its password: the name of the one server.
    name: String,
}

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(crate) async fn open(config: &RedisConfig) -> Result<Self> {
        let link = if config.cluster {
            let mut builder = ClusterClientBuilder::new(config.urls.clone())
                .connection_timeout(CONNECTION_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(100)
                .max_retry_wait(1000);
            if let Some(certs) = config.certificates() {
                builder = builder.certs(certs);
            }
            Link::Cluster(builder.build()?.get_async_connection().await?)
        } else {
            let url = config.urls[0].as_str();
            let client = match config.certificates() {
                Some(certs) => Client::build_with_tls(url, certs)?,
                None => Client::open(url)?,
            };
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(CONNECT_ATTEMPTS)
                .set_max_delay(MAX_RECONNECT_DELAY);
            Link::Single(ConnectionManager::new_with_config(client, manager).await?)
        };
        Ok(Self {
            link,
            wait_replicas: config.wait_replicas,
            name: config.redacted(),
        })
    }

    /// The primaries a scan visits, as the slot that routes to each: one entry (`None`) on
    /// one Redis; on a cluster, the lowest slot of each primary, in ascending order, so the
    /// order (a page position's node index) survives a failover, which moves a primary's
    /// slots to its replica whole.
    pub(crate) async fn primaries(&mut self) -> Result<Vec<Option<u16>>> {
        if matches!(self.link, Link::Single(_)) {
            return Ok(vec![None]);
        }
        let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(self).await?;
        let mut lowest: HashMap<String, u16> = HashMap::new();
        for range in ranges {
            let (start, master) = start_and_master(range)?;
            let id = master
                .get(2)
                .map(|v| String::from_redis_value(v.clone()))
                .transpose()?
                .unwrap_or_default();
            let slot = lowest.entry(id).or_insert(start);
            *slot = (*slot).min(start);
        }
        let mut slots: Vec<u16> = lowest.into_values().collect();
        slots.sort_unstable();
        Ok(slots.into_iter().map(Some).collect())
    }

    /// Sends `cmd` to the primary that `node` (from [`Conn::primaries`]) names.
    pub(crate) async fn on_primary<T: FromRedisValue>(
        &mut self,
        node: Option<u16>,
        cmd: Cmd,
    ) -> Result<T> {
        let value = match (&mut self.link, node) {
            (Link::Cluster(conn), Some(slot)) => {
                let route = Route::new(slot, SlotAddr::Master);
                conn.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await?
            }
            _ => cmd.query_async(self).await?,
        };
        Ok(T::from_redis_value(value)?)
    }

    /// One reply per command, each command naming keys of one slot: one pipeline on one
    /// Redis; on a cluster, where keys of different slots live on different nodes, the
    /// commands are sent at once, each to its node.
    pub(crate) async fn each<T: FromRedisValue>(&mut self, cmds: Vec<Cmd>) -> Result<Vec<T>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match &self.link {
            Link::Single(_) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                Ok(pipe.query_async(self).await?)
            }
            Link::Cluster(conn) => Ok(try_join_all(cmds.into_iter().map(|cmd| {
                let mut conn = conn.clone();
                async move { cmd.query_async::<T>(&mut conn).await }
            }))
            .await?),
        }
    }

    /// `cmd`'s reply from every primary, each named by its address (on one Redis, by
    /// `REDIS_URL` without its password).
    pub(crate) async fn on_every_primary(&mut self, cmd: Cmd) -> Result<Vec<(String, Value)>> {
        match &mut self.link {
            Link::Single(conn) => Ok(vec![(self.name.clone(), cmd.query_async(conn).await?)]),
            Link::Cluster(conn) => {
                let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let replies = conn.route_command(cmd, all).await?;
                let mut named: Vec<(String, Value)> = FromRedisValue::from_redis_value(replies)?;
                named.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(named)
            }
        }
    }

    /// Replicas each write waits for (`0`: none).
    pub(crate) fn wait_replicas(&self) -> u16 {
        self.wait_replicas
    }
}

/// The start slot and the master (`[host, port, id, ...]`) of a `CLUSTER SLOTS` range
/// (`[start, end, master, replica...]`).
fn start_and_master(range: Value) -> Result<(u16, Vec<Value>)> {
    let Value::Array(items) = range else {
        return Err(StoreError::corrupt(
            "CLUSTER SLOTS",
            "a range is not an array",
        ));
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next()) {
        (Some(start), Some(_end), Some(master)) => Ok((
            u16::from_redis_value(start)?,
            Vec::<Value>::from_redis_value(master)?,
        )),
        _ => Err(StoreError::corrupt(
            "CLUSTER SLOTS",
            "a range has fewer than three elements",
        )),
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_urls_or_the_flag_mean_a_cluster_that_waits_for_a_replica() {
        let one = RedisConfig::parse("redis://127.0.0.1:6379/0", false).unwrap();
        assert!(!one.is_cluster());
        assert_eq!(one.wait_replicas, 0);
        let seeds = RedisConfig::parse("redis://a:7001, redis://b:7002", false).unwrap();
        assert!(seeds.is_cluster());
        assert_eq!(seeds.urls, ["redis://a:7001", "redis://b:7002"]);
        assert_eq!(seeds.wait_replicas, 1);
        assert!(
            RedisConfig::parse("rediss://a:7001", true)
                .unwrap()
                .is_cluster()
        );
    }

    #[test]
    fn refuses_what_is_not_a_redis_url_without_echoing_a_password() {
        for (urls, cluster) in [
            ("", false),
            (" , ", false),
            ("http://:hunter2@host", false),
            ("redis://:hunter2@a:7001,rediss://b:7002", false),
        ] {
            let err = RedisConfig::parse(urls, cluster).unwrap_err().to_string();
            assert!(err.contains("REDIS_URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn redacts_credentials_and_the_query() {
        assert_eq!(
            redacted("redis://:hunter2@redis:6379/0"),
            "redis://***@redis:6379/0"
        );
        assert_eq!(redacted("rediss://user:p@ss@host/1"), "rediss://***@host/1");
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redacted("redis+unix:///run/redis.sock?db=0&pass=hunter2"),
            "redis+unix:///run/redis.sock?***"
        );
    }
}
