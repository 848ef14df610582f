//! Where the machine's RabbitMQ and Redis are (`AMQP_URL`, `REDIS_URL`, with the local
//! defaults), the Redis Cluster and TLS Redis of scripts/redis-cluster.sh
//! (`WA_TEST_REDIS_CLUSTER_URLS`, `WA_TEST_REDIS_TLS_URL`, `WA_TEST_REDIS_TLS_CA`), their
//! `host:port` for a [`Proxy`](crate::Proxy), and removing a test's Redis keys. Reads the
//! environment and talks to Redis; never starts or stops a service.

/// `AMQP_URL`, or the local RabbitMQ (`amqp://guest:guest@127.0.0.1:5672/%2f`).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// `REDIS_URL`, or the local Redis (`redis://127.0.0.1:6379/0`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// `WA_TEST_REDIS_CLUSTER_URLS`, or the six nodes scripts/redis-cluster.sh starts
/// (`redis://127.0.0.1:7001,...,redis://127.0.0.1:7006`): comma-separated, as `REDIS_URL`
/// names a Redis Cluster.
pub fn redis_cluster_urls() -> String {
    std::env::var("WA_TEST_REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        (7001..=7006)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// `WA_TEST_REDIS_TLS_URL`, or the TLS-only Redis scripts/redis-cluster.sh starts
/// (`rediss://127.0.0.1:6380`).
pub fn redis_tls_url() -> String {
    std::env::var("WA_TEST_REDIS_TLS_URL").unwrap_or_else(|_| "rediss://127.0.0.1:6380".to_owned())
}

/// `WA_TEST_REDIS_TLS_CA`, or the CA certificate scripts/redis-cluster.sh made for the TLS
/// Redis (`${TMPDIR:-/tmp}/wa-redis-cluster/tls/ca.crt`).
pub fn redis_tls_ca() -> std::path::PathBuf {
    std::env::var_os("WA_TEST_REDIS_TLS_CA").map_or_else(
        || {
            let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
            std::path::Path::new(&tmp).join("wa-redis-cluster/tls/ca.crt")
        },
        std::path::PathBuf::from,
    )
}

/// `host:port` of the RabbitMQ at [`amqp_url`].
///
/// # Panics
///
/// When `AMQP_URL` is not a URL with a host.
pub fn amqp_addr() -> String {
    host_port(&amqp_url(), 5672)
}

/// `host:port` of the Redis at [`redis_url`].
///
/// # Panics
///
/// When `REDIS_URL` is not a URL with a host.
pub fn redis_addr() -> String {
    host_port(&redis_url(), 6379)
}

/// `host:port` of `url` (credentials and path left out), `default_port` when it names none.
///
/// # Panics
///
/// When `url` is not a URL with a host.
pub fn host_port(url: &str, default_port: u16) -> String {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let host = parsed
        .host_str()
        .unwrap_or_else(|| panic!("{url}: no host"));
    format!("{host}:{}", parsed.port().unwrap_or(default_port))
}

/// Deletes every Redis key under `prefix` (`SCAN` + `UNLINK`). Synchronous on purpose, so a
/// test's `Drop` can call it even after a panic; errors are ignored (cleanup is best effort).
///
/// `redis_url` may list several comma-separated nodes (a Redis Cluster, as
/// [`redis_cluster_urls`]): each is visited, and keys of different slots are unlinked one by one.
pub fn forget_redis_prefix(redis_url: &str, prefix: &str) {
    for url in redis_url.split(',') {
        forget_on_node(url.trim(), prefix);
    }
}

fn forget_on_node(redis_url: &str, prefix: &str) {
    let Ok(mut conn) = redis::Client::open(redis_url).and_then(|c| c.get_connection()) else {
        return;
    };
    let mut cursor = 0u64;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
        else {
            return;
        };
        if !keys.is_empty()
            && redis::cmd("UNLINK")
                .arg(&keys)
                .query::<i64>(&mut conn)
                .is_err()
        {
            // CROSSSLOT on a cluster node (or MOVED on a replica): one key at a time; a
            // replica's keys are its master's, removed when that node is visited.
            for key in &keys {
                let _: redis::RedisResult<i64> = redis::cmd("UNLINK").arg(key).query(&mut conn);
            }
        }
        cursor = next;
        if cursor == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_leaves_out_credentials_and_path() {
        assert_eq!(
            host_port("amqp://guest:guest@127.0.0.1:5673/%2f", 5672),
            "127.0.0.1:5673"
        );
        assert_eq!(host_port("redis://localhost/0", 6379), "localhost:6379");
        assert_eq!(
            host_port("redis://:pw@10.0.0.1:7000", 6379),
            "10.0.0.1:7000"
        );
    }
}
