//! Business integration webhooks (`application.business_integration_install|uninstall`):
//! what they change, with the same ordering and dedupe rules as the WABA's own install and
//! uninstall.
//!
//! - An uninstall is first remembered on the business (the newest time wins), then applied to
//!   every tenant the business owns: each one is uninstalled and its token destroyed, unless
//!   its own newest install/uninstall is newer (the tenant's ordering decides, as always).
//! - Because it is remembered, an install of one of the business's WABAs that is not newer
//!   than the integration uninstall and arrives after it (late, or for a WABA not known yet)
//!   is applied and at once uninstalled at the integration uninstall's time: the tenant ends
//!   `uninstalled` and no token is fetched. An install newer than it is a real re-install.
//! - An install is recorded on the business only: it names no WABA, so there is nothing to
//!   fetch a token for (the WABA's own `PARTNER_APP_INSTALLED`, which carries `waba_info`,
//!   does that).

use tracing::info;
use wa_ids::BusinessId;
use wa_store::{Install, IntegrationChange, Uninstall};

use crate::process::{Effects, Outcome};

impl Effects {
    /// `business_integration_install`: recorded on the business.
    pub(crate) async fn integration_install(
        &self,
        business_id: &BusinessId,
        event_time: i64,
    ) -> Result<Outcome, Outcome> {
        let newer = self
            .store
            .record_integration(business_id, IntegrationChange::Installed, event_time)
            .await?;
        info!(%business_id, event_time, newer, "business integration installed");
        Ok(if newer {
            Outcome::Applied
        } else {
            Outcome::Stale
        })
    }

    /// `business_integration_uninstall`: remembered, then every tenant of the business
    /// uninstalled and revoked.
    pub(crate) async fn integration_uninstall(
        &self,
        business_id: &BusinessId,
        event_time: i64,
    ) -> Result<Outcome, Outcome> {
        // Remembered first: an install processed concurrently either sees it, or was indexed
        // under the owner before the listing below and is uninstalled by it.
        self.store
            .record_integration(business_id, IntegrationChange::Uninstalled, event_time)
            .await?;
        let wabas = self.store.tenants_owned_by(business_id).await?;
        let mut uninstalled = 0_usize;
        for waba_id in &wabas {
            let applied = self
                .store
                .apply_uninstall(&Uninstall {
                    waba_id: waba_id.clone(),
                    owner_business_id: None,
                    event_time,
                })
                .await?;
            if !applied.stale {
                uninstalled += 1;
            }
        }
        info!(%business_id, event_time, tenants = wabas.len(), uninstalled,
            "business integration uninstalled; business tokens destroyed");
        Ok(Outcome::Applied)
    }

    /// For an install just applied: if its business removed the integration at or after the
    /// install's time, uninstalls the tenant at that time and returns the outcome (no token is
    /// fetched); `None` if the install stands.
    pub(crate) async fn removed_by_integration(
        &self,
        ev: &Install,
    ) -> Result<Option<Outcome>, Outcome> {
        let Some(removed_at) = self
            .store
            .integration_uninstalled_at(&ev.owner_business_id)
            .await?
        else {
            return Ok(None);
        };
        // At the same second the uninstall wins, as for the WABA's own events.
        if removed_at < ev.event_time {
            return Ok(None);
        }
        self.store
            .apply_uninstall(&Uninstall {
                waba_id: ev.waba_id.clone(),
                owner_business_id: None,
                event_time: removed_at,
            })
            .await?;
        info!(waba_id = %ev.waba_id, business_id = %ev.owner_business_id, removed_at,
            "install older than its business's integration uninstall; uninstalled, no token");
        Ok(Some(Outcome::Stale))
    }
}
