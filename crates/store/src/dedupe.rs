//! Exactly-once effects per change: claim, then complete or release.
//!
//! The value of `{prefix}dedupe:{<key>}` is a random claim token while a worker processes the
//! change (expiring after the lease, so a crashed worker gives it back), and `done` for
//! `WA_DEDUPE_TTL` once the effects are finished. Only the holder of the claim can complete
//! or release it: a worker whose lease ran out cannot undo a claim taken over by another.

use std::{sync::LazyLock, time::Duration};

use redis::Script;
use wa_ids::DedupeKey;

use crate::{Result, Store};

pub(crate) static CLAIM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/claim.lua")));
static COMPLETE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/complete.lua")));
pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release.lua")));

/// Proof that this worker holds a claim: an unguessable random value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(String);

impl ClaimToken {
    pub(crate) fn random() -> Self {
        Self(format!("{:032x}", rand::random::<u128>()))
    }

    /// The token as stored in Redis (32 lowercase hex digits).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The change is ours to process; finish with [`Store::complete`] or [`Store::release`].
    Acquired(ClaimToken),
    /// Another worker holds an unexpired claim: requeue with a delay, do not ack as done.
    InProgress,
    /// The change's effects already happened (within `WA_DEDUPE_TTL`): ack and skip.
    Done,
}

impl Store {
    /// Claims dedupe key `key` (the change's 64-hex dedupe key) for `lease`.
    ///
    /// Atomic: of any number of concurrent callers exactly one gets [`Claim::Acquired`]. If
    /// the holder dies, the claim expires after `lease` and the change can be claimed again,
    /// so choose a lease longer than processing one change can take (Graph retries included).
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`] (transient when Redis is unreachable).
    #[tracing::instrument(name = "redis claim", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn claim(&self, key: &DedupeKey, lease: Duration) -> Result<Claim> {
        let token = ClaimToken::random();
        let answer: i64 = CLAIM
            .key(self.keys.dedupe(key))
            .arg(&token.0)
            .arg(millis(lease))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match answer {
            1 => Claim::Acquired(token),
            3 => Claim::Done,
            _ => Claim::InProgress,
        })
    }

    /// Marks `key` done for `ttl` (`WA_DEDUPE_TTL`), if `token` still holds the claim.
    ///
    /// Returns `false` when the claim was no longer ours (the lease expired, and perhaps
    /// another worker took it over); nothing is written then.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`].
    #[tracing::instrument(name = "redis complete", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn complete(
        &self,
        key: &DedupeKey,
        token: &ClaimToken,
        ttl: Duration,
    ) -> Result<bool> {
        let ours: i64 = COMPLETE
            .key(self.keys.dedupe(key))
            .arg(&token.0)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(ours == 1)
    }

    /// Gives the claim back at once (processing failed before its effects were finished), so
    /// a redelivery can retry without waiting for the lease. A no-op if it is no longer ours.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`].
    #[tracing::instrument(name = "redis release", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn release(&self, key: &DedupeKey, token: &ClaimToken) -> Result<()> {
        let _: i64 = RELEASE
            .key(self.keys.dedupe(key))
            .arg(&token.0)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }
}

/// Milliseconds for `PX`: at least 1 (Redis refuses 0), at most about 36 million years
/// (Redis refuses expiry times that overflow when added to the current time).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, 1 << 60)
}
