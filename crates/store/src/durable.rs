//! Writes that count only once replicas hold them (`WA_REDIS_WAIT_REPLICAS`;
//! docs/RELIABILITY.md, "Redis durability").
//!
//! A write and its `WAIT` go in one pipeline, on one connection to the key's primary: if that
//! primary dies before `WAIT` answers, the pipeline fails as a whole and the cluster client
//! sends it again, write included, to the promoted replica; a `WAIT` sent on its own could
//! instead reach the new primary without the write and report it replicated. Re-sending the
//! write is safe: every write of the store is idempotent. Scripts go as `EVALSHA`, loaded on
//! every primary (`SCRIPT LOAD`) when one answers `NOSCRIPT`.
//!
//! With no replica to wait for, a write is the plain command or script call.
//!
//! [`Store::replica_shortfall`] tells, before any write, whether every primary has as many
//! connected replicas as the writes will wait for.

use std::fmt;

use redis::{Cmd, FromRedisValue, Script, ToRedisArgs, Value};

use crate::{Result, Store, StoreError, WAIT_TIMEOUT, conn::Conn};

/// A primary with fewer connected replicas than each write waits for: every write it takes
/// would fail as [`StoreError::NotReplicated`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaShortfall {
    /// The primary's address (on one Redis, `REDIS_URL` without its password).
    pub primary: String,
    /// Replicas connected to it and in sync (`state=online` in `INFO replication`), the
    /// only ones `WAIT` counts.
    pub connected: u16,
    /// Replicas each write waits for (`WA_REDIS_WAIT_REPLICAS`).
    pub wanted: u16,
}

impl fmt::Display for ReplicaShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WA_REDIS_WAIT_REPLICAS is {}, but the Redis primary {} has {} replica(s) in sync \
             (state=online)",
            self.wanted, self.primary, self.connected
        )
    }
}

/// The replicas `WAIT` counts in an `INFO replication` reply: its `slaveN:` lines with
/// `state=online` (`connected_slaves` also counts replicas still syncing, in `wait_bgsave` or
/// `send_bulk`, which acknowledge no write). `None` when the reply has no `connected_slaves`
/// field, so is not one of a primary.
fn connected_replicas(info: &str) -> Option<u16> {
    let lines = info.lines().map(str::trim);
    if !lines.clone().any(|l| l.starts_with("connected_slaves:")) {
        return None;
    }
    let online = lines
        .filter_map(|l| {
            let (name, fields) = l.split_once(':')?;
            let index = name.strip_prefix("slave")?;
            (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())).then_some(fields)
        })
        .filter(|fields| fields.split(',').any(|f| f == "state=online"))
        .count();
    Some(u16::try_from(online).unwrap_or(u16::MAX))
}

/// Whether an error answering `INFO` is a refusal that asking again will not change (no ACL
/// permission, a command the server or proxy does not know or has disabled), not a passing
/// state (`LOADING`, `BUSY` with a slow script, `OOM`, a failover), which is retried as Redis
/// not answering.
fn refusal(e: &redis::ServerError) -> bool {
    match e.kind() {
        Some(redis::ServerErrorKind::NoPerm) => true,
        Some(redis::ServerErrorKind::ResponseError) | None => {
            let said = e.details().unwrap_or_default().to_ascii_lowercase();
            e.code() == "ERR"
                && ["unknown command", "disabled", "not allowed", "unsupported"]
                    .iter()
                    .any(|w| said.contains(w))
        }
        _ => false,
    }
}

impl Store {
    /// The first primary (by address) with fewer connected replicas than each write waits
    /// for, if any; `None` when writes wait for none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`] when Redis does not answer; [`StoreError::PrimaryUnasked`] when
    /// a primary of the cluster was not asked; [`StoreError::ReplicasUnchecked`] when a
    /// primary refuses `INFO` or its reply has no replica fields.
    pub async fn replica_shortfall(&self) -> Result<Option<ReplicaShortfall>> {
        let mut conn = self.conn();
        let wanted = conn.wait_replicas();
        if wanted == 0 {
            return Ok(None);
        }
        let mut info = redis::cmd("INFO");
        info.arg("replication");
        for (primary, reply) in conn.on_every_primary(info).await? {
            let unchecked = |reason: String| StoreError::ReplicasUnchecked {
                primary: primary.clone(),
                reason,
            };
            let text = match reply {
                Value::ServerError(e) if refusal(&e) => {
                    let details = e.details().unwrap_or_default();
                    return Err(unchecked(format!("INFO refused ({} {details})", e.code())));
                }
                Value::ServerError(e) => return Err(redis::RedisError::from(e).into()),
                reply => String::from_redis_value(reply)?,
            };
            let connected = connected_replicas(&text).ok_or_else(|| {
                unchecked("its INFO replication has no connected_slaves field".to_owned())
            })?;
            if connected < wanted {
                return Ok(Some(ReplicaShortfall {
                    primary,
                    connected,
                    wanted,
                }));
            }
        }
        Ok(None)
    }
}

/// One script call: its keys, then its arguments.
pub(crate) struct Eval<'a> {
    script: &'a Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl<'a> Eval<'a> {
    pub(crate) fn new(script: &'a Script) -> Self {
        Self {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds `KEYS[n]`.
    pub(crate) fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    /// Adds `ARGV[n]`.
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    fn evalsha(&self) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }

    /// The first key, naming the write in errors.
    fn first_key(&self) -> String {
        self.keys
            .first()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    }
}

impl Conn {
    /// Runs `call`; with replicas to wait for, followed by `WAIT` in the same pipeline.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::NotReplicated`] when fewer replicas than asked
    /// held it within [`WAIT_TIMEOUT`] (it stands on the primary: applying it again is a
    /// no-op).
    pub(crate) async fn eval<T: FromRedisValue>(&mut self, call: &Eval<'_>) -> Result<T> {
        if self.wait_replicas() == 0 {
            let mut invocation = call.script.prepare_invoke();
            for key in &call.keys {
                invocation.key(key);
            }
            for arg in &call.args {
                invocation.arg(arg);
            }
            return Ok(invocation.invoke_async(self).await?);
        }
        let key = call.first_key();
        match self.with_wait(call.evalsha(), &key).await {
            Err(StoreError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                let _: String = call.script.load_async(self).await?;
                self.with_wait(call.evalsha(), &key).await
            }
            other => other,
        }
    }

    /// Runs `cmd`, a write of `key`; with replicas to wait for, followed by `WAIT`.
    ///
    /// # Errors
    ///
    /// As [`Conn::eval`].
    pub(crate) async fn write<T: FromRedisValue>(&mut self, cmd: Cmd, key: &str) -> Result<T> {
        if self.wait_replicas() == 0 {
            return Ok(cmd.query_async(self).await?);
        }
        self.with_wait(cmd, key).await
    }

    async fn with_wait<T: FromRedisValue>(&mut self, cmd: Cmd, key: &str) -> Result<T> {
        let wanted = self.wait_replicas();
        let mut pipe = redis::pipe();
        pipe.add_command(cmd)
            .cmd("WAIT")
            .arg(wanted)
            .arg(u64::try_from(WAIT_TIMEOUT.as_millis()).unwrap_or(u64::MAX));
        let (reply, acked): (T, u64) = pipe.query_async(self).await?;
        if acked < u64::from(wanted) {
            return Err(StoreError::NotReplicated {
                key: key.to_owned(),
                acked,
                wanted,
            });
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::{connected_replicas, refusal};

    fn error(reply: &str) -> redis::ServerError {
        match redis::parse_redis_value(format!("-{reply}\r\n").as_bytes()) {
            Ok(redis::Value::ServerError(e)) => e,
            other => panic!("not a server error: {other:?}"),
        }
    }

    #[test]
    fn only_a_refusal_that_lasts_stops_the_replica_check() {
        for lasting in [
            "NOPERM User wa has no permissions to run the 'info' command",
            "ERR unknown command 'INFO', with args beginning with: 'replication'",
            "ERR command INFO is disabled",
        ] {
            assert!(refusal(&error(lasting)), "{lasting}");
        }
        for passing in [
            "LOADING Redis is loading the dataset in memory",
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
            "OOM command not allowed when used memory > 'maxmemory'.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "ERR Error running script",
        ] {
            assert!(!refusal(&error(passing)), "{passing}");
        }
    }

    /// `INFO replication` of a Redis 7 primary with one replica in sync and one still
    /// receiving its first copy.
    const ONE_ONLINE_ONE_SYNCING: &str = "# Replication\r\n\
        role:master\r\n\
        connected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=7004,state=online,offset=18734,lag=0\r\n\
        slave1:ip=127.0.0.1,port=7005,state=wait_bgsave,offset=0,lag=0\r\n\
        master_failover_state:no-failover\r\n\
        master_replid:3c1f2e0d9a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9\r\n\
        master_replid2:0000000000000000000000000000000000000000\r\n\
        master_repl_offset:18734\r\n\
        second_repl_offset:-1\r\n\
        repl_backlog_active:1\r\n\
        repl_backlog_size:1048576\r\n\
        repl_backlog_first_byte_offset:1\r\n\
        repl_backlog_histlen:18734\r\n";

    #[test]
    fn counts_only_the_replicas_in_sync_as_wait_does() {
        assert_eq!(connected_replicas(ONE_ONLINE_ONE_SYNCING), Some(1));
        let bulk = ONE_ONLINE_ONE_SYNCING.replace("wait_bgsave", "send_bulk");
        assert_eq!(connected_replicas(&bulk), Some(1));
        let both = ONE_ONLINE_ONE_SYNCING.replace("wait_bgsave", "online");
        assert_eq!(connected_replicas(&both), Some(2));
    }

    #[test]
    fn a_primary_without_replicas_has_none_and_a_reply_without_the_fields_is_not_read() {
        let alone =
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n";
        assert_eq!(connected_replicas(alone), Some(0));
        assert_eq!(connected_replicas("role:master\r\n"), None);
        assert_eq!(connected_replicas(""), None);
    }
}
