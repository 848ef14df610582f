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

use redis::{Cmd, FromRedisValue, Script, ToRedisArgs};

use crate::{Result, StoreError, WAIT_TIMEOUT, conn::Conn};

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
