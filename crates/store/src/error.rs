//! The one error type of this crate, and which of its cases are worth retrying.

use redis::RetryMethod;

/// Everything that can go wrong while reading or writing wa-onboard's Redis state.
///
/// Use [`StoreError::is_transient`] to decide between "retry later" (requeue with a delay)
/// and "this will never work" (dead-letter it).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused the command, the connection failed, or a reply did not arrive in time.
    /// (The cause is part of the message and deliberately not a `source`, so a printed
    /// error chain does not repeat it.)
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    /// A stored business token could not be encrypted or decrypted: wrong key, a ciphertext
    /// moved to another tenant, tampering, or an unknown format version.
    #[error("token crypto: {0}")]
    Crypto(String),
    /// A key holds data this crate did not write or cannot read back.
    #[error("corrupt record at `{key}`: {reason}")]
    Corrupt {
        /// The Redis key (never the value) that could not be read.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token encryption key (`WA_TOKEN_KEY`) is unusable.
    #[error("bad token key: {0}")]
    BadKey(String),
    /// Fewer replicas than `WA_REDIS_WAIT_REPLICAS` acknowledged a write in time (`WAIT`):
    /// it is applied on the primary but could be lost by a failover, so the change is not
    /// done yet. Transient: the change is retried, and re-applying it is a no-op.
    #[error("write to `{key}` held by {acked} of {wanted} replicas in time")]
    NotReplicated {
        /// A key of the write (never a value).
        key: String,
        /// Replicas that acknowledged it.
        acked: u64,
        /// Replicas asked for.
        wanted: u16,
    },
    /// A command meant for every primary of the cluster got no reply from this one: the
    /// client had no connection to it. Transient: asked again, it may answer.
    #[error("could not ask the Redis primary {primary}")]
    PrimaryUnasked {
        /// The primary's address (`host:port` of `CLUSTER SLOTS`).
        primary: String,
    },
    /// Whether a primary has the replicas `WA_REDIS_WAIT_REPLICAS` asks for cannot be told:
    /// it refuses `INFO` (an ACL without `@dangerous`, a proxy that does not pass it) or its
    /// `INFO replication` lacks the replica fields. Lasts until the server or its ACL
    /// changes; `WA_REDIS_WAIT_REPLICAS=0` needs no `INFO`.
    #[error("cannot check WA_REDIS_WAIT_REPLICAS on the Redis primary {primary}: {reason}")]
    ReplicasUnchecked {
        /// The primary's address (on one Redis, `REDIS_URL` without its password).
        primary: String,
        /// `INFO refused (...)` with the server's answer, or what the reply lacks.
        reason: String,
    },
    /// A prefix, funnel label or funnel window that cannot be used: a prefix containing
    /// `{`/`}` (which would break the Redis Cluster hash tags), a label outside its character
    /// set, an unordered or too long window. (Ids are typed and cannot be invalid.)
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidInput {
        /// Which argument was refused (`prefix`, `funnel label`, ...).
        what: &'static str,
        /// The refused value (never a token).
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e)
    }
}

impl From<redis::ParsingError> for StoreError {
    fn from(e: redis::ParsingError) -> Self {
        Self::Redis(e.into())
    }
}

/// `Result` with [`StoreError`] as the default error.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the same call may succeed later without anyone changing anything: Redis was
    /// unreachable, the connection dropped, a reply timed out, or the server is loading,
    /// failing over or busy (`LOADING`, `BUSY`, `OOM`, `TRYAGAIN`, `MASTERDOWN`,
    /// `CLUSTERDOWN`, `READONLY`, redirections). The worker should requeue the message with a delay.
    ///
    /// Everything else (a script error, `WRONGTYPE`, a corrupt record, a crypto failure, a bad
    /// key or id) is permanent: retrying cannot fix it.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Redis(e) => {
                e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || !matches!(e.retry_method(), RetryMethod::NoRetry)
                    // Busy with a slow script, or out of memory: both pass with time.
                    || matches!(e.code(), Some("BUSY" | "OOM"))
            }
            Self::NotReplicated { .. } | Self::PrimaryUnasked { .. } => true,
            Self::ReplicasUnchecked { .. }
            | Self::Crypto(_)
            | Self::Corrupt { .. }
            | Self::BadKey(_)
            | Self::InvalidInput { .. } => false,
        }
    }

    pub(crate) fn corrupt(key: &str, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_transient_and_script_errors_are_not() {
        let io = redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert!(StoreError::from(io).is_transient());

        let timeout =
            redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        assert!(StoreError::from(timeout).is_transient());

        for (reply, transient) in [
            ("-LOADING Redis is loading the dataset in memory", true),
            ("-BUSY Redis is busy running a script", true),
            (
                "-OOM command not allowed when used memory > 'maxmemory'",
                true,
            ),
            (
                "-TRYAGAIN Multiple keys request during rehashing of slot",
                true,
            ),
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value",
                false,
            ),
            (
                "-ERR user_script:1: Script attempted to access nonexistent global",
                false,
            ),
        ] {
            let value = redis::parse_redis_value(format!("{reply}\r\n").as_bytes()).unwrap();
            let err = value.extract_error().unwrap_err();
            assert_eq!(StoreError::from(err).is_transient(), transient, "{reply}");
        }

        let client = redis::RedisError::from((redis::ErrorKind::Client, "bad"));
        assert!(!StoreError::from(client).is_transient());
        assert!(!StoreError::Crypto("x".into()).is_transient());
        assert!(!StoreError::corrupt("k", "r").is_transient());
        let unreplicated = StoreError::NotReplicated {
            key: "k".into(),
            acked: 0,
            wanted: 1,
        };
        assert!(unreplicated.is_transient());
    }
}
