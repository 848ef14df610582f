//! Everything wa-onboard keeps in Redis.
//!
//! This crate owns three kinds of state, all under one configurable key prefix (default
//! [`DEFAULT_PREFIX`]), and the paged read of one of them:
//!
//! - **Dedupe claims** ([`Store::claim`], [`Store::complete`], [`Store::release`]): one key per
//!   change dedupe key, so a change's effects run once however often Meta or the broker
//!   re-delivers it, and a worker that dies mid-way gives the change back when its lease
//!   expires.
//! - **Tenant state** ([`Store::apply_install`], [`Store::apply_uninstall`],
//!   [`Store::apply_account_event`], ...): one hash per WABA, changed only by atomic Lua
//!   scripts that order events by their `event_time` (Meta's `entry.time`), so late and
//!   re-delivered events never move a tenant backwards. [`TenantRecord`] is the JSON of
//!   docs/REFERENCE.md, "Tenant record".
//! - **Pages of tenants** ([`Store::tenant_page`]) for the internal API: bounded, filtered,
//!   resumable from a [`PagePosition`] that can name a Redis Cluster node.
//! - **Business tokens**, encrypted with AES-256-GCM under `WA_TOKEN_KEY` ([`TokenKey`]) and
//!   bound to their WABA id; plaintext exists only in [`secrecy::SecretString`]s. Only a
//!   [`TokenVault`] ([`Store::with_token_key`]) reads, writes or rekeys them: a [`Store`]
//!   alone holds no key, so reading state never needs `WA_TOKEN_KEY`.
//!
//! Key layout (`P` = prefix; every key one script touches shares the hash tag `{<waba_id>}`,
//! so the layout works unchanged on Redis Cluster):
//!
//! | key | type | content |
//! |---|---|---|
//! | `Ptenant:{W}` | hash | the tenant record (see [`record`]) |
//! | `Ptoken:{W}` | string | the encrypted business token (see [`crypto`]) |
//! | `Pevents:{W}` | sorted set | the last [`EVENT_LOG_LEN`] account events, by event time |
//! | `Powner:{O}` | set | WABA ids ever installed by owner business `O` (an index) |
//! | `Pdedupe:{K}` | string | a claim token while in progress, `done` once completed |
//! | `Pcheck:{W}` | string | the lease of a tenant check in progress (see [`CheckFindings`]) |
//! | `Pbusiness:{O}` | hash | business integration install/uninstall times (see [`integration`]) |
//! | `Psignups:{es}:…` | various | Embedded Signup session logs and funnel (see [`session`]) |
//! | `Please:{census}` | string | the id of the worker replica counting the token health census (`lease`) |
//! | `Pcensus:{census}` | string | the last census that replica published, JSON (see [`Census`]) |
//!
//! It talks to one Redis or a Redis Cluster, plain or TLS ([`RedisConfig`]; the connection in
//! `conn`): scans walk every primary, and on a cluster every write of tenant state, tokens
//! and the owner index waits for a replica before it counts (`durable`; docs/RELIABILITY.md,
//! "Redis durability").
//!
//! Every id it is given is a typed id of `wa-ids`, which has already passed its rule (so it
//! can be embedded in a key and a hash tag); this crate never checks an id again.
//!
//! It never touches the broker, the Graph API or HTTP, and it decides nothing about what an
//! event means for Meta: it records what the worker tells it, in the right order.

#![forbid(unsafe_code)]

pub mod account;
mod census;
mod check;
mod conn;
pub mod crypto;
mod dedupe;
mod durable;
mod error;
pub mod integration;
mod lease;
mod list;
mod page;
mod phones;
pub mod record;
mod rekey;
pub mod session;
mod tenant;
mod vault;

use std::{fmt, sync::Arc};

use crate::conn::Conn;

use wa_ids::{BusinessId, DedupeKey, WabaId};

pub use crate::{
    account::{AccountEvent, EVENT_LOG_LEN},
    census::Census,
    check::{CheckFindings, CheckGuard},
    conn::{RedisConfig, WAIT_TIMEOUT, redacted},
    crypto::TokenKey,
    dedupe::{Claim, ClaimToken},
    error::{Result, StoreError},
    lease::MAX_HOLDER_LEN,
    page::{MAX_SCAN_STEPS, Page, PagePosition},
    phones::MAX_VERIFIED_PHONE_NUMBERS,
    record::{AccountState, Attention, Status, TenantRecord, TokenInfo, TokenStatus},
    rekey::Rekeyed,
    tenant::{Applied, Install, Uninstall},
    vault::{TokenExpiry, TokenVault},
};
pub use crate::{
    integration::IntegrationChange,
    session::{Funnel, SignupCounter, SignupEvent, SignupMerge, SignupRecorded},
};

/// The key prefix used when the operator does not choose one.
pub const DEFAULT_PREFIX: &str = "wa:";

/// A handle on wa-onboard's Redis state, on one Redis or a Redis Cluster, plain or TLS
/// ([`RedisConfig`]). Cheap to clone; clones share one multiplexed connection (one per node
/// on a cluster) that reconnects by itself (with backoff) after Redis restarts or fails over.
///
/// Every method is safe to call concurrently from many tasks and many processes: each state
/// change is one atomic script, and re-applying the same event is a no-op.
///
/// A `Store` holds no token key: it reads and writes tenant state, claims and session logs.
/// Business tokens need a [`TokenVault`] ([`Store::with_token_key`]).
#[derive(Clone)]
pub struct Store {
    conn: Conn,
    keys: Arc<Keys>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("prefix", &self.keys.prefix)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379/0`; several comma-separated
    /// node URLs for a Redis Cluster, as [`RedisConfig::parse`] reads them), keeping every
    /// key under `prefix` (e.g. [`DEFAULT_PREFIX`]). No token key is needed: see
    /// [`Store::with_token_key`].
    ///
    /// Connecting waits at most 2 s per attempt, with a few attempts under backoff; every
    /// later reply at most 5 s. After that the call fails with a
    /// [transient](StoreError::is_transient) error and the connection is re-established by
    /// the next call. A timed-out state change may still have been
    /// applied: retrying it is safe, since every step is idempotent.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidInput`] if `prefix` contains `{` or `}` (it would break the
    /// Cluster hash tags) or `url` is not a Redis URL; [`StoreError::Redis`] if Redis is
    /// unreachable.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        Self::open(&RedisConfig::parse(url, false)?, prefix).await
    }

    /// As [`Store::connect`], with every setting of [`RedisConfig`] (cluster, TLS roots,
    /// replicas to wait for).
    ///
    /// # Errors
    ///
    /// As [`Store::connect`].
    pub async fn open(config: &RedisConfig, prefix: &str) -> Result<Self> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError::InvalidInput {
                what: "prefix",
                value: prefix.to_owned(),
                reason: "must not contain `{` or `}`",
            });
        }
        let conn = Conn::open(config).await?;
        tracing::debug!(prefix, cluster = config.is_cluster(), "connected to redis");
        Ok(Self {
            conn,
            keys: Arc::new(Keys {
                prefix: prefix.to_owned(),
            }),
        })
    }

    /// The business tokens of this store, sealed and opened with `key` (`WA_TOKEN_KEY`).
    /// Only what reads or writes tokens needs one: the worker, `tenants token`, `tenants
    /// rekey`.
    #[must_use]
    pub fn with_token_key(&self, key: TokenKey) -> TokenVault {
        TokenVault::new(self.clone(), key)
    }

    /// The key prefix this store was opened with.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// A connection handle for one call (clones share the multiplexed connection).
    fn conn(&self) -> Conn {
        self.conn.clone()
    }
}

/// Builds every key name from the prefix.
#[derive(Debug)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn tenant(&self, waba_id: &WabaId) -> String {
        format!("{}tenant:{{{waba_id}}}", self.prefix)
    }

    fn token(&self, waba_id: &WabaId) -> String {
        format!("{}token:{{{waba_id}}}", self.prefix)
    }

    fn events(&self, waba_id: &WabaId) -> String {
        format!("{}events:{{{waba_id}}}", self.prefix)
    }

    fn owner(&self, owner_business_id: &BusinessId) -> String {
        format!("{}owner:{{{owner_business_id}}}", self.prefix)
    }

    fn check(&self, waba_id: &WabaId) -> String {
        format!("{}check:{{{waba_id}}}", self.prefix)
    }

    fn dedupe(&self, key: &DedupeKey) -> String {
        format!("{}dedupe:{{{key}}}", self.prefix)
    }

    /// One key, with its own hash tag.
    fn census_lease(&self) -> String {
        format!("{}lease:{{census}}", self.prefix)
    }

    /// One key, in the slot of [`Keys::census_lease`]: its publishing script checks the lease.
    fn census(&self) -> String {
        format!("{}census:{{census}}", self.prefix)
    }

    /// The `SCAN MATCH` pattern for every tenant hash (glob characters in the prefix escaped).
    fn tenant_pattern(&self) -> String {
        self.pattern("tenant")
    }

    /// The `SCAN MATCH` pattern for every `{prefix}{kind}:{…}` key.
    fn pattern(&self, kind: &str) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + kind.len() + 4);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(kind);
        pattern.push_str(":{*}");
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_tenant_hash_tag() {
        let k = Keys {
            prefix: "wa:".into(),
        };
        let waba = WabaId::parse("123").unwrap();
        assert_eq!(k.tenant(&waba), "wa:tenant:{123}");
        assert_eq!(k.token(&waba), "wa:token:{123}");
        assert_eq!(k.events(&waba), "wa:events:{123}");
        assert_eq!(k.owner(&BusinessId::parse("9").unwrap()), "wa:owner:{9}");
        let key = DedupeKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(k.dedupe(&key), format!("wa:dedupe:{{{key}}}"));
        assert_eq!(k.census_lease(), "wa:lease:{census}");
        assert_eq!(k.census(), "wa:census:{census}");
    }

    #[test]
    fn scan_pattern_escapes_glob_characters() {
        let k = Keys {
            prefix: "t*[1]?:".into(),
        };
        assert_eq!(k.tenant_pattern(), r"t\*\[1\]\?:tenant:{*}");
    }
}
