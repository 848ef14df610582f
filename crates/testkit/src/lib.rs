//! Helpers for wa-onboard's integration tests, shared so each test binary does not grow its
//! own copy:
//!
//! - [`eventually`]: poll with a deadline instead of sleeping;
//! - [`amqp_url`], [`redis_url`] (and their `host:port`), [`redis_cluster_urls`],
//!   [`redis_tls_url`] (with [`redis_tls_ca`]), [`forget_redis_prefix`]: the machine's
//!   services and a test's Redis keys removed, even from a `Drop` after a panic;
//! - [`rabbitmq_cluster`], [`amqp_cluster_url`], [`ensure_rabbitmq_cluster`],
//!   [`quorum_queue`]: the 3-node RabbitMQ cluster on loopback, started when needed, and
//!   where a quorum queue's leader and members are;
//! - [`Proxy`]: a TCP proxy in front of RabbitMQ or Redis that a test can cut, freeze and
//!   restore;
//! - [`Listening`]: a child process started on port 0, with the address it reported it bound
//!   (no port picked in advance and hoped free); [`RefusedAddr`]: an address where every
//!   connection is refused, held for as long as the test needs it;
//! - [`declare_unbounded_unrouted`]: a queue as an earlier version declared it;
//! - [`Tap`]: a consumer with its own queue bound to an exchange (tenant events), as the
//!   partner's services run one, keeping what it received;
//! - [`record_check`]: a tenant check's findings recorded as the worker records them.
//!
//! Never changes the code under test: it drives processes, sockets and the services' data,
//! and calls wa-store's public API only to leave a tenant as a check would.

use std::time::{Duration, Instant};

pub use self::{
    acl::{ACL_TEST_PASSWORD, RedisUserWithout},
    check::record_check,
    child::{Listening, RefusedAddr},
    cluster::{
        ClusterNode, QuorumQueue, amqp_cluster_url, connection_channels, ensure_rabbitmq_cluster,
        quorum_queue, rabbitmq_cluster,
    },
    legacy::declare_unbounded_unrouted,
    proxy::Proxy,
    services::{
        amqp_addr, amqp_url, forget_redis_prefix, host_port, redis_addr, redis_cluster_urls,
        redis_tls_ca, redis_tls_url, redis_url,
    },
    tap::{Tap, Tapped},
};

mod acl;
mod check;
mod child;
mod cluster;
mod legacy;
mod proxy;
mod services;
mod tap;

/// Unix seconds now, as the store and Graph count time.
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Deadline polling: `check` until it returns `Some`, or panic with `what` after `within`.
///
/// # Panics
///
/// When `within` passes first.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
