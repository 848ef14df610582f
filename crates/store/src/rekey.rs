//! `tenants rekey`: rewrite every stored business token under the encrypting key.
//!
//! Online and safe to run beside live workers: each token is re-sealed and written back with a
//! compare-and-set (only if the stored ciphertext is still the one that was read), so a token
//! a worker wrote or destroyed meanwhile is never overwritten with a stale one. Run it with
//! `WA_TOKEN_KEY=new,old` on both the workers and this command; afterwards `old` can go.
//! On a Redis Cluster it scans every primary, so no token is left under the old key.

use std::sync::LazyLock;

use redis::Script;

use crate::{Result, TokenVault, durable::Eval};

static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
            redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 \
         end return 0",
    )
});

/// What a rekey did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rekeyed {
    /// Token keys found.
    pub scanned: usize,
    /// Re-sealed under the encrypting key.
    pub rekeyed: usize,
    /// Already under the encrypting key.
    pub current: usize,
    /// Changed or deleted by a worker while being rekeyed (left as the worker wrote it).
    pub raced: usize,
}

impl TokenVault {
    /// Re-seals every stored token under the encrypting key. `progress(done, total)` is called
    /// after each token.
    ///
    /// # Errors
    ///
    /// Redis errors; a token no configured key can open ([`crate::StoreError::Crypto`]).
    /// Tokens already rewritten stay rewritten: running it again continues.
    pub async fn rekey(&self, mut progress: impl FnMut(usize, usize)) -> Result<Rekeyed> {
        let mut conn = self.store.conn();
        let pattern = self.store.keys.pattern("token");
        let mut keys = Vec::new();
        // Every primary of a Redis Cluster holds its own share of the tokens.
        for node in conn.primaries().await? {
            let mut cursor = 0u64;
            loop {
                let mut step = redis::cmd("SCAN");
                step.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500);
                let (next, page): (u64, Vec<String>) = conn.on_primary(node, step).await?;
                keys.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let total = keys.len();
        let mut out = Rekeyed {
            scanned: total,
            ..Rekeyed::default()
        };
        let token_prefix = format!("{}token:{{", self.store.keys.prefix);
        for (done, key) in keys.iter().enumerate() {
            let waba_id = key
                .strip_prefix(&token_prefix)
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or_default();
            let stored: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
            match stored {
                None => out.raced += 1,
                Some(stored) if self.key.is_current(&stored) => out.current += 1,
                Some(stored) => {
                    let token = self.key.open(waba_id, &stored)?;
                    let sealed = self.key.seal(waba_id, &token)?;
                    let swapped: i64 = conn
                        .eval(
                            Eval::new(&COMPARE_AND_SET)
                                .key(key)
                                .arg(&stored)
                                .arg(&sealed),
                        )
                        .await?;
                    if swapped == 1 {
                        out.rekeyed += 1;
                    } else {
                        out.raced += 1;
                    }
                }
            }
            progress(done + 1, total);
        }
        Ok(out)
    }
}
