//! Carrying out an `account_update` plan: tenant state in Redis, the business token fetched
//! from Graph and stored encrypted, the app subscribed to the WABA; an uninstall destroys the
//! token. Each step is idempotent so that a redelivery resumes where a crashed attempt
//! stopped.
//!
//! Never decides what a payload means (`crate::plan::account_update` did) and never logs a
//! token.

use std::sync::Arc;

use secrecy::SecretString;
use tracing::{info, warn};
use wa_graph::{GraphClient, GraphError};
use wa_ids::{BusinessId, WabaId};
use wa_store::{Install, Store, TokenVault, Uninstall};

use super::integration::removed_by_integration;
use crate::{
    metrics::Metrics,
    outcome::{Applied, Failure},
    plan::account_update::Plan,
};

/// The effects of `account_update` webhooks.
#[derive(Clone)]
pub struct AccountUpdates {
    /// Tenant state.
    pub store: Store,
    /// Business tokens (the same store, with `WA_TOKEN_KEY`).
    pub vault: TokenVault,
    /// Meta's Graph API.
    pub graph: GraphClient,
    /// Subscribe the app to each installed WABA (`WA_SUBSCRIBE_APP`).
    pub subscribe_app: bool,
    /// Counts token fetches.
    pub metrics: Arc<Metrics>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl AccountUpdates {
    /// Carries out `plan`.
    ///
    /// # Errors
    ///
    /// [`Failure`] from Redis or the Graph API, or an uninstall naming no known tenant.
    pub async fn apply(&self, plan: Plan) -> Result<Applied, Failure> {
        match plan {
            Plan::Install(install) => self.install(&install).await,
            Plan::Uninstall(uninstall) => self.uninstall(&uninstall).await,
            Plan::UninstallByEntry {
                entry_id,
                entry_owner,
                event_time,
            } => {
                self.uninstall_by_entry(&entry_id, &entry_owner, event_time)
                    .await
            }
            Plan::Account {
                waba_id,
                event,
                value,
                event_time,
            } => {
                let applied = self
                    .store
                    .apply_account_event(&waba_id, &event, &value, event_time)
                    .await?;
                Ok(if applied.stale {
                    Applied::Stale
                } else {
                    Applied::Changed
                })
            }
        }
    }

    async fn install(&self, ev: &Install) -> Result<Applied, Failure> {
        let applied = self.store.apply_install(ev).await?;
        if applied.stale {
            info!(waba_id = %ev.waba_id, "install older than the tenant's state; ignored");
            return Ok(Applied::Stale);
        }
        // The business removed the integration since (see `crate::effects::integration`).
        if let Some(applied) = removed_by_integration(&self.store, ev).await? {
            return Ok(applied);
        }
        let mut token: Option<SecretString> = None;
        if applied.needs_token() {
            let fetched = self.graph.fetch_business_token(&ev.owner_business_id).await;
            self.metrics.token_fetch(&fetched);
            let fetched = match fetched {
                Ok(t) => t,
                Err(e) => return Err(self.graph_failure(ev, &e, true).await),
            };
            // Only for this install: an uninstall (and maybe a newer install) while the fetch
            // was in flight makes this token stale.
            let stored = self
                .vault
                .store_token(&ev.waba_id, &fetched, now(), ev.event_time)
                .await?;
            if !stored {
                info!(waba_id = %ev.waba_id, "install superseded while fetching; token discarded");
                return Ok(Applied::Stale);
            }
            info!(waba_id = %ev.waba_id, "business token stored");
            token = Some(fetched);
        }
        if self.subscribe_app && applied.needs_subscription() {
            let token = match token {
                Some(t) => t,
                None => match self.vault.token(&ev.waba_id).await? {
                    Some(t) => t,
                    None => {
                        return Err(Failure::Retry {
                            error: "no stored token to subscribe with".into(),
                            after: None,
                        });
                    }
                },
            };
            if let Err(e) = self.graph.subscribe_app(&ev.waba_id, &token).await {
                return Err(self.graph_failure(ev, &e, false).await);
            }
            self.store
                .mark_subscribed(&ev.waba_id, ev.event_time)
                .await?;
            info!(waba_id = %ev.waba_id, "app subscribed to the WABA");
        }
        Ok(Applied::Changed)
    }

    /// A Graph error during `ev`: logged; a permanent one on the token call is recorded on
    /// the tenant (`token.status = failed`).
    async fn graph_failure(&self, ev: &Install, e: &GraphError, token_call: bool) -> Failure {
        let waba_id = &ev.waba_id;
        if e.is_transient() {
            warn!(%waba_id, error = %e.summary(), "transient Graph error");
            return Failure::graph(e);
        }
        warn!(%waba_id, error = %e.summary(), "permanent Graph error");
        if token_call
            && let Err(store) = self
                .store
                .mark_token_failed(waba_id, &e.summary(), ev.event_time)
                .await
        {
            return Failure::from(store);
        }
        Failure::graph(e)
    }

    async fn uninstall(&self, ev: &Uninstall) -> Result<Applied, Failure> {
        let applied = self.store.apply_uninstall(ev).await?;
        if applied.stale {
            return Ok(Applied::Stale);
        }
        info!(waba_id = %ev.waba_id, "uninstalled; business token destroyed");
        Ok(Applied::Changed)
    }

    /// docs/REFERENCE.md, "Semantics the tests hold the project to": applied to the tenant
    /// whose WABA id, or the tenants whose owner business id, equals `entry.id`; nothing
    /// matching goes to the dead-letter queue. Never guess.
    async fn uninstall_by_entry(
        &self,
        entry_id: &WabaId,
        entry_owner: &BusinessId,
        event_time: i64,
    ) -> Result<Applied, Failure> {
        // A WABA only if a signed install or uninstall named it: a record created by browser
        // data (a signup session) or by an account event keyed on entry.id says nothing
        // about whether entry.id is a WABA or a business.
        let known_waba = self
            .store
            .get(entry_id)
            .await?
            .is_some_and(|t| t.installed_at.is_some() || t.uninstalled_at.is_some());
        let wabas = if known_waba {
            vec![entry_id.clone()]
        } else {
            self.store.tenants_owned_by(entry_owner).await?
        };
        if wabas.is_empty() {
            return Err(Failure::dead_letter(format!(
                "uninstall without waba_info: entry.id {entry_id} matches no known WABA or owner business"
            )));
        }
        let mut any_applied = false;
        for waba_id in wabas {
            let ev = Uninstall {
                waba_id,
                owner_business_id: None,
                event_time,
            };
            any_applied |= self.uninstall(&ev).await? == Applied::Changed;
        }
        Ok(if any_applied {
            Applied::Changed
        } else {
            Applied::Stale
        })
    }
}
