//! Where Redis is and how to reach it: [`RedisConfig`], read from `REDIS_URL`,
//! `WA_REDIS_CLUSTER`, `WA_REDIS_CA_FILE` and `WA_REDIS_WAIT_REPLICAS` (docs/REFERENCE.md,
//! "Variables"), and URLs without their passwords for messages. It opens no connection
//! ([`crate::conn`] does) and knows nothing of keys.

use std::{fmt, time::Duration};

use redis::{Client, IntoConnectionInfo as _, TlsCertificates};

use crate::{Result, StoreError};

/// How long a write waits for its replicas (`WAIT`) before it counts as not durable.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where Redis is and how to talk to it.
#[derive(Clone)]
pub struct RedisConfig {
    pub(crate) urls: Vec<String>,
    pub(crate) cluster: bool,
    ca: Option<Vec<u8>>,
    pub(crate) wait_replicas: u16,
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

    pub(crate) fn certificates(&self) -> Option<TlsCertificates> {
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
