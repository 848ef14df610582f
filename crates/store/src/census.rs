//! The census of token health, as its counter published it: one JSON string in
//! `{prefix}census:{census}`, next to the census lease (`lease`) in the same hash slot, so
//! the script that publishes it checks the lease in the same atomic step (and works on a
//! Redis Cluster).
//!
//! One worker replica counts (the lease holder); every replica reads the last census back to
//! export it, so the gauges never depend on which replica holds the lease, and a handover
//! leaves them as they were. The census keeps no expiry: how old it is shows in its
//! `counted_at`.
//!
//! Never reads or writes anything else; holds counts only, never a tenant or a token.

use std::{sync::LazyLock, time::Duration};

use redis::{AsyncCommands as _, Script};
use serde::{Deserialize, Serialize};

use crate::{
    Attention, Result, Store, StoreError, TokenStatus, dedupe::millis, lease::check_holder,
};

static PUBLISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/publish_census.lua")));

/// What one walk over every installed tenant counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Census {
    /// When the walk began (Unix seconds): no record it read is older than this.
    pub counted_at: i64,
    /// Installed tenants by token status (a status left out counts 0).
    pub tokens: Vec<(TokenStatus, i64)>,
    /// Installed tenants whose active token expires within the refresh window.
    pub expiring: i64,
    /// Of `expiring`, those no check reached for a day and more (their `token.checked_at`
    /// older, or unknown).
    pub expiring_unchecked: i64,
    /// Installed tenants by what needs attention (a value left out counts 0).
    pub attention: Vec<(Attention, i64)>,
}

impl Store {
    /// Publishes `census` as the one every replica exports, if `holder` still holds the
    /// census lease, and renews that lease for `ttl`; `false` (nothing written) once another
    /// holder has it or it ran out.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::InvalidInput`] for a holder id
    /// [`Store::hold_census_lease`] refuses.
    #[tracing::instrument(name = "redis publish_census", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn publish_census(
        &self,
        holder: &str,
        ttl: Duration,
        census: &Census,
    ) -> Result<bool> {
        check_holder(holder)?;
        let key = self.keys.census();
        let json =
            serde_json::to_string(census).map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
        let published: i64 = PUBLISH
            .key(self.keys.census_lease())
            .key(key)
            .arg(holder)
            .arg(millis(ttl))
            .arg(json)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(published == 1)
    }

    /// The last census published, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::Corrupt`] for a value this crate did not write.
    #[tracing::instrument(name = "redis census", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn census(&self) -> Result<Option<Census>> {
        let key = self.keys.census();
        let json: Option<String> = self.conn().get(&key).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::corrupt(&key, e.to_string())))
            .transpose()
    }
}
