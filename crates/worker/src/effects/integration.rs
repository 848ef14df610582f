//! Business integration webhooks (`application.business_integration_install|uninstall`):
//! what they change, with the same ordering and dedupe rules as the WABA's own install and
//! uninstall.
//!
//! - An uninstall is first remembered on the business (the newest time wins), then applied to
//!   every tenant the business owns: each one is uninstalled and its token destroyed, unless
//!   its own newest install/uninstall is newer (the tenant's ordering decides, as always).
//! - Because it is remembered, an install of one of the business's WABAs that is not newer
//!   than the integration uninstall and arrives after it (late, or for a WABA not known yet)
//!   is applied and at once uninstalled at the integration uninstall's time
//!   ([`removed_by_integration`], called by `crate::effects::account_update`): the tenant ends
//!   `uninstalled` and no token is held. An install newer than it is a real re-install. At
//!   the same second Graph settles it for this WABA, through a question the caller passes
//!   (`crate::effects::installed`), never a fixed rule.
//! - An install is recorded on the business only: it names no WABA, so there is nothing to
//!   fetch a token for (the WABA's own `PARTNER_APP_INSTALLED`, which carries `waba_info`,
//!   does that).
//!
//! - Each tenant an uninstall changes gets its own `tenant.uninstalled` (one per WABA, ids
//!   apart), all published and confirmed before the change is reported applied; a
//!   redelivery publishes them again under the same ids. A tenant an older uninstall already
//!   uninstalled gets none (only its `uninstalled_at` moves). An install of a WABA that its
//!   business's integration uninstall already overrides is stale: it publishes nothing.
//!
//! Redis, and the tenant events (`crate::events`); Graph is reached only through the
//! question passed to [`removed_by_integration`].

use tracing::info;
use wa_ids::{BusinessId, DedupeKey};
use wa_store::{Install, IntegrationChange, Store, Uninstall};

use super::{
    emit::{tenant_event, uninstalled_before},
    installed::{Installed, unsettled},
};
use crate::{
    events::{EventKind, TenantEvents},
    outcome::{Applied, Failure},
    plan::integration::{Change, Plan},
};

/// The effects of business integration webhooks.
#[derive(Clone)]
pub struct Integrations {
    /// Tenant and business state.
    pub store: Store,
    /// Where the `tenant.uninstalled` of each tenant an uninstall changed is published.
    pub events: TenantEvents,
}

impl Integrations {
    /// Carries out `plan`, the plan of the change whose dedupe key is `cause`.
    ///
    /// # Errors
    ///
    /// [`Failure`] from Redis, or tenant events the broker did not confirm.
    pub async fn apply(&self, plan: &Plan, cause: &DedupeKey) -> Result<Applied, Failure> {
        match plan.change {
            Change::Install => self.install(&plan.business_id, plan.event_time).await,
            Change::Uninstall => {
                self.uninstall(&plan.business_id, plan.event_time, cause)
                    .await
            }
        }
    }

    /// `business_integration_install`: recorded on the business.
    async fn install(&self, business_id: &BusinessId, event_time: i64) -> Result<Applied, Failure> {
        let newer = self
            .store
            .record_integration(business_id, IntegrationChange::Installed, event_time)
            .await?;
        info!(%business_id, event_time, newer, "business integration installed");
        Ok(if newer {
            Applied::Changed
        } else {
            Applied::Stale
        })
    }

    /// `business_integration_uninstall`: remembered, then every tenant of the business
    /// uninstalled and revoked.
    async fn uninstall(
        &self,
        business_id: &BusinessId,
        event_time: i64,
        cause: &DedupeKey,
    ) -> Result<Applied, Failure> {
        // Remembered first: an install processed concurrently either sees it, or was indexed
        // under the owner before the listing below and is uninstalled by it.
        self.store
            .record_integration(business_id, IntegrationChange::Uninstalled, event_time)
            .await?;
        let wabas = self.store.tenants_owned_by(business_id).await?;
        let mut events = Vec::new();
        for waba_id in &wabas {
            let before = self.store.get(waba_id).await?;
            let applied = self
                .store
                .apply_uninstall(&Uninstall {
                    waba_id: waba_id.clone(),
                    owner_business_id: None,
                    event_time,
                })
                .await?;
            if !applied.stale && !uninstalled_before(before.as_ref(), &applied, event_time) {
                let kind = EventKind::Uninstalled;
                events.extend(tenant_event(&self.store, kind, cause, waba_id, event_time).await?);
            }
        }
        info!(%business_id, event_time, tenants = wabas.len(), uninstalled = events.len(),
            "business integration uninstalled; business tokens destroyed");
        self.events.publish_all(&events).await?;
        Ok(Applied::Changed)
    }
}

/// For an install just applied: if its business removed the integration after the install's
/// time, uninstalls the tenant at that time and returns [`Applied::Stale`] (no token is
/// fetched); `None` if the install stands. At the same second, `ask` (Graph, for this WABA)
/// settles it: installed, the install stands; not installed, the uninstall is applied.
///
/// # Errors
///
/// [`Failure`] from Redis, or Graph answering neither way at the same second (retried if
/// transient, dead-lettered otherwise).
pub(super) async fn removed_by_integration<F, Fut>(
    store: &Store,
    ev: &Install,
    ask: F,
) -> Result<Option<Applied>, Failure>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Installed>,
{
    let Some(removed_at) = store
        .integration_uninstalled_at(&ev.owner_business_id)
        .await?
    else {
        return Ok(None);
    };
    if removed_at < ev.event_time {
        return Ok(None);
    }
    if removed_at == ev.event_time {
        match ask().await {
            Installed::Yes(_) => {
                info!(waba_id = %ev.waba_id, business_id = %ev.owner_business_id, removed_at,
                    "install and integration uninstall in one second: Graph says installed; the install stands");
                return Ok(None);
            }
            Installed::No => {}
            Installed::Unknown(e) => return Err(unsettled(&e, ev.event_time)),
        }
    }
    store
        .apply_uninstall(&Uninstall {
            waba_id: ev.waba_id.clone(),
            owner_business_id: None,
            event_time: removed_at,
        })
        .await?;
    info!(waba_id = %ev.waba_id, business_id = %ev.owner_business_id, removed_at,
        "install not newer than its business's integration uninstall; uninstalled, no token");
    Ok(Some(Applied::Stale))
}
