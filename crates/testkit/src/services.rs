//! Where the machine's RabbitMQ and Redis are (`AMQP_URL`, `REDIS_URL`, with the local
//! defaults), their `host:port` for a [`Proxy`](crate::Proxy), and removing a test's Redis
//! keys. Reads the environment and talks to Redis; never starts or stops a service.

/// `AMQP_URL`, or the local RabbitMQ (`amqp://guest:guest@127.0.0.1:5672/%2f`).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// `REDIS_URL`, or the local Redis (`redis://127.0.0.1:6379/0`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
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
pub fn forget_redis_prefix(redis_url: &str, prefix: &str) {
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
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("UNLINK").arg(&keys).query(&mut conn);
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
