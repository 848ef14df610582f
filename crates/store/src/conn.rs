//! The one connection the store talks through, whatever Redis is behind it: one server (a
//! reconnecting [`ConnectionManager`]) or a Redis Cluster (the redis crate's own cluster
//! client, which follows `MOVED`/`ASK` and refreshes its slot map after a failover), plain
//! (`redis://`) or TLS (`rediss://`), as a [`RedisConfig`] ([`crate::config`]) says.
//!
//! [`Conn`] is a [`ConnectionLike`], so every command and script of the store runs on it
//! unchanged (on a cluster, each is routed by its keys' hash tag). What differs by kind is
//! here and only here: the list of primaries a scan must visit ([`Conn::primaries`]), a
//! command sent to one of them ([`Conn::on_primary`]), reads of keys in different slots
//! ([`Conn::each`]), a command sent to every primary ([`Conn::on_every_primary`]). Waiting for
//! replicas is [`crate::durable`]'s.
//!
//! It knows nothing of keys' meaning or of any record.

use std::{collections::HashMap, time::Duration};

use futures_util::future::try_join_all;
use redis::{
    Client, Cmd, FromRedisValue, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{
        MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
    },
};

use crate::{Result, StoreError, config::RedisConfig};

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
    /// `REDIS_URL` without its password). A primary that refuses `cmd` answers a
    /// [`Value::ServerError`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; on a cluster, [`StoreError::PrimaryUnasked`] when fewer
    /// primaries replied than `CLUSTER SLOTS` lists (the client leaves out, without an error,
    /// a primary it has no connection to).
    pub(crate) async fn on_every_primary(&mut self, cmd: Cmd) -> Result<Vec<(String, Value)>> {
        match &mut self.link {
            Link::Single(conn) => {
                let reply = match cmd.query_async(conn).await {
                    Ok(reply) => reply,
                    Err(e) => Value::ServerError(redis::ServerError::try_from(e)?),
                };
                Ok(vec![(self.name.clone(), reply)])
            }
            Link::Cluster(conn) => {
                let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let replies = conn.route_command(cmd, all).await?;
                let mut named: Vec<(String, Value)> = FromRedisValue::from_redis_value(replies)?;
                named.sort_by(|a, b| a.0.cmp(&b.0));
                let primaries = self.primary_addresses().await?;
                match unasked(&primaries, &named) {
                    Some(primary) => Err(StoreError::PrimaryUnasked { primary }),
                    None => Ok(named),
                }
            }
        }
    }

    /// `host:port` of each primary `CLUSTER SLOTS` lists, in order.
    async fn primary_addresses(&mut self) -> Result<Vec<String>> {
        let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(self).await?;
        let mut addresses = Vec::new();
        for range in ranges {
            let (_, master) = start_and_master(range)?;
            let mut fields = master.into_iter();
            let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
                return Err(StoreError::corrupt(
                    "CLUSTER SLOTS",
                    "a master has no host and port",
                ));
            };
            let address = format!(
                "{}:{}",
                String::from_redis_value(host)?,
                u16::from_redis_value(port)?
            );
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        addresses.sort();
        Ok(addresses)
    }

    /// Replicas each write waits for (`0`: none).
    pub(crate) fn wait_replicas(&self) -> u16 {
        self.wait_replicas
    }
}

/// A primary with no reply among `replies`, when fewer replied than there are `primaries`
/// (named by address when the replies' names tell which; else `of the cluster`).
fn unasked(primaries: &[String], replies: &[(String, Value)]) -> Option<String> {
    (replies.len() < primaries.len()).then(|| {
        primaries
            .iter()
            .find(|p| !replies.iter().any(|(name, _)| name == *p))
            .cloned()
            .unwrap_or_else(|| "of the cluster".to_owned())
    })
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
    use redis::Value;

    use super::unasked;

    fn replies(names: &[&str]) -> Vec<(String, Value)> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), Value::Okay))
            .collect()
    }

    #[test]
    fn a_primary_left_out_of_the_replies_is_named_and_all_replying_is_none() {
        let primaries: Vec<String> = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
            .map(str::to_owned)
            .into();
        let all = replies(&["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]);
        assert_eq!(unasked(&primaries, &all), None);
        let two = replies(&["127.0.0.1:7001", "127.0.0.1:7003"]);
        assert_eq!(unasked(&primaries, &two).as_deref(), Some("127.0.0.1:7002"));
        // Fewer replies under other names (a hostname for an address): still not a pass.
        let renamed = replies(&["redis-a:7001", "redis-b:7002"]);
        assert_eq!(
            unasked(&primaries, &renamed).as_deref(),
            Some("127.0.0.1:7001")
        );
        assert_eq!(unasked(&primaries, &[]).as_deref(), Some("127.0.0.1:7001"));
    }
}
