//! The census lease: one worker replica at a time counts the tenants for the token health
//! gauges, the one whose id is in `{prefix}lease:{census}` (one key with its own hash tag, so
//! it lives on one node of a Redis Cluster like any other).
//!
//! The holder renews it before each census, after each of its pages, and as it publishes the
//! census (`census`, which checks the lease in the same script); a replica that stops gives
//! it back, and a crashed one's runs out after its TTL, when another replica takes it. Only
//! the holder renews or gives it back. Not tenant state: it is not waited on by a replica
//! (`durable`), and a failover that loses it only lets two replicas count once.
//!
//! Never reads or writes anything else.

use std::{sync::LazyLock, time::Duration};

use redis::{AsyncCommands as _, Script};

use crate::{
    Result, Store, StoreError,
    dedupe::{RELEASE, millis},
};

static HOLD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/hold_lease.lua")));

/// The longest holder id [`Store::hold_census_lease`] takes.
pub const MAX_HOLDER_LEN: usize = 128;

impl Store {
    /// Takes the census lease for `holder` for `ttl`, or renews it if `holder` already has
    /// it. `false` while another holder's lease runs.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::InvalidInput`] for an empty holder id or one
    /// longer than [`MAX_HOLDER_LEN`].
    #[tracing::instrument(name = "redis hold_census_lease", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn hold_census_lease(&self, holder: &str, ttl: Duration) -> Result<bool> {
        check_holder(holder)?;
        let held: i64 = HOLD
            .key(self.keys.census_lease())
            .arg(holder)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(held == 1)
    }

    /// Gives the census lease back, if `holder` has it; whether it had.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn release_census_lease(&self, holder: &str) -> Result<bool> {
        let released: i64 = RELEASE
            .key(self.keys.census_lease())
            .arg(holder)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(released == 1)
    }

    /// Who holds the census lease now, if anyone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn census_lease_holder(&self) -> Result<Option<String>> {
        Ok(self.conn().get(self.keys.census_lease()).await?)
    }
}

/// Refuses an empty holder id or one longer than [`MAX_HOLDER_LEN`].
pub(crate) fn check_holder(holder: &str) -> Result<()> {
    if holder.is_empty() || holder.len() > MAX_HOLDER_LEN {
        return Err(StoreError::InvalidInput {
            what: "lease holder",
            value: holder.chars().take(MAX_HOLDER_LEN).collect(),
            reason: "empty, or longer than 128 bytes",
        });
    }
    Ok(())
}
