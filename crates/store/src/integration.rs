//! Business integration installs and uninstalls (`application` webhooks
//! `business_integration_install` / `business_integration_uninstall`), per customer business.
//!
//! Key: `Pbusiness:{<business_id>}` (hash; the same hash tag as the owner index
//! `Powner:{<business_id>}`), fields `integration_installed_at` and
//! `integration_uninstalled_at`: the newest `entry.time` of each.
//!
//! The uninstall time is what keeps ordering right for WABAs this store did not know when the
//! business removed the integration: an install of such a WABA that is not newer than the
//! business's integration uninstall, arriving late, is recognised as older (the worker
//! applies the uninstall to it at once and fetches no token), exactly as an uninstall for an
//! unknown WABA leaves an `uninstalled` record so that its late install is ignored.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use wa_ids::BusinessId;

use crate::{Keys, Result, Store, durable::Eval};

static INTEGRATION: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/integration.lua")));

impl Keys {
    fn business(&self, business_id: &BusinessId) -> String {
        format!("{}business:{{{business_id}}}", self.prefix)
    }
}

/// Which integration webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationChange {
    /// `business_integration_install`.
    Installed,
    /// `business_integration_uninstall`.
    Uninstalled,
}

impl IntegrationChange {
    fn field(self) -> &'static str {
        match self {
            Self::Installed => "integration_installed_at",
            Self::Uninstalled => "integration_uninstalled_at",
        }
    }
}

impl Store {
    /// Records an integration install or uninstall of `business_id` at `event_time`
    /// (`entry.time`), keeping the newest of each. Returns whether it was newer than the one
    /// recorded (a redelivery returns `false` and changes nothing).
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`].
    #[tracing::instrument(name = "redis record_integration", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn record_integration(
        &self,
        business_id: &BusinessId,
        change: IntegrationChange,
        event_time: i64,
    ) -> Result<bool> {
        let key = self.keys.business(business_id);
        let mut conn = self.conn();
        let newer: i64 = conn
            .eval(
                Eval::new(&INTEGRATION)
                    .key(&key)
                    .arg(change.field())
                    .arg(event_time),
            )
            .await?;
        Ok(newer == 1)
    }

    /// The newest integration uninstall recorded for `business_id`, if any.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`].
    #[tracing::instrument(name = "redis integration_uninstalled_at", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn integration_uninstalled_at(
        &self,
        business_id: &BusinessId,
    ) -> Result<Option<i64>> {
        let at: Option<i64> = self
            .conn()
            .hget(
                self.keys.business(business_id),
                IntegrationChange::Uninstalled.field(),
            )
            .await?;
        Ok(at)
    }

    /// The newest integration install recorded for `business_id`, if any.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`].
    pub async fn integration_installed_at(&self, business_id: &BusinessId) -> Result<Option<i64>> {
        let at: Option<i64> = self
            .conn()
            .hget(
                self.keys.business(business_id),
                IntegrationChange::Installed.field(),
            )
            .await?;
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_business_key_shares_the_owner_index_hash_tag() {
        let k = Keys {
            prefix: "wa:".into(),
        };
        let business = BusinessId::parse("9").unwrap();
        assert_eq!(k.business(&business), "wa:business:{9}");
        assert_eq!(k.owner(&business), "wa:owner:{9}");
    }
}
