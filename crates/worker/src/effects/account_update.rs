//! Carrying out an `account_update` plan: tenant state in Redis, the business token fetched
//! from Graph and stored encrypted, the app subscribed to the WABA, the WABA's phone numbers
//! read from Graph; an uninstall destroys the token. Each step is idempotent so that a
//! redelivery resumes where a crashed attempt stopped.
//!
//! - Ties: an install and an uninstall with the same `entry.time` (of the WABA, or of its
//!   business's integration) are settled by Graph for this WABA (`crate::effects::tie`,
//!   `crate::effects::installed`), never by a fixed rule.
//! - Stale outcomes: a Graph failure for an install that is no longer the one in effect (an
//!   uninstall or a newer install landed while it ran) is acked as stale, never retried or
//!   dead-lettered.
//!
//! - Tenant events (`crate::events`): each change applied publishes its event, confirmed,
//!   before the change is reported applied: `tenant.installed` once an install is applied,
//!   `tenant.token_ready` once its token is stored, `tenant.token_failed` once a permanent
//!   fetch failure is recorded, `tenant.uninstalled` per WABA uninstalled (not again for
//!   one an older uninstall left uninstalled),
//!   `tenant.account_changed` for any other event. A redelivery of a change already applied
//!   publishes its events again, under the same ids (the first copy may never have been
//!   confirmed); a stale change, or one for another app, publishes nothing. A publish that
//!   is not confirmed fails the change with a retry.
//!
//! Never decides what a payload means (`crate::plan::account_update` did) and never logs a
//! token.

use std::sync::Arc;

use secrecy::SecretString;
use tracing::{info, warn};
use wa_graph::{GraphClient, GraphError};
use wa_ids::{AppId, BusinessId, DedupeKey, WabaId};
use wa_store::{Install, Status, Store, TokenStatus, TokenVault, Uninstall};

use super::{
    emit::{tenant_event, uninstalled_before},
    installed::{self, Installed},
    integration::removed_by_integration,
    tie,
};
use crate::{
    clock::unix_now,
    events::{EventKind, TenantEvents},
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
    /// `WA_APP_ID`: the app access token of `debug_token`.
    pub app_id: AppId,
    /// Counts token fetches.
    pub metrics: Arc<Metrics>,
    /// Where the tenant events of what changed are published.
    pub events: TenantEvents,
}

impl AccountUpdates {
    /// Carries out `plan`, the plan of the change whose dedupe key is `cause` (the tenant
    /// events' ids derive from it).
    ///
    /// # Errors
    ///
    /// [`Failure`] from Redis or the Graph API, an uninstall naming no known tenant, or a
    /// tenant event the broker did not confirm.
    pub async fn apply(&self, plan: Plan, cause: &DedupeKey) -> Result<Applied, Failure> {
        match plan {
            Plan::Install(install) => self.install(&install, cause).await,
            Plan::Uninstall(uninstall) => self.uninstall(&uninstall, cause).await,
            Plan::UninstallByEntry {
                entry_id,
                entry_owner,
                event_time,
            } => {
                self.uninstall_by_entry(&entry_id, &entry_owner, event_time, cause)
                    .await
            }
            Plan::OtherApp {
                event,
                waba_id,
                partner_app_id,
            } => {
                info!(waba_id = ?waba_id.as_ref().map(WabaId::as_str), %partner_app_id, event,
                    "event for another app; not applied");
                self.metrics.other_app(&event);
                Ok(Applied::OtherApp)
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
                if applied.stale {
                    return Ok(Applied::Stale);
                }
                let kind = EventKind::AccountChanged;
                if let Some(e) =
                    tenant_event(&self.store, kind, cause, &waba_id, event_time).await?
                {
                    self.events.publish(e.with_event(event)).await?;
                }
                Ok(Applied::Changed)
            }
        }
    }

    /// Publishes the event `kind` about `waba_id`, caused by `cause` at `occurred_at`.
    async fn emit(
        &self,
        kind: EventKind,
        cause: &DedupeKey,
        waba_id: &WabaId,
        occurred_at: i64,
    ) -> Result<(), Failure> {
        if let Some(e) = tenant_event(&self.store, kind, cause, waba_id, occurred_at).await? {
            self.events.publish(e).await?;
        }
        Ok(())
    }

    /// Fetches the business token of `owner`, counted.
    async fn fetch_token(&self, owner: &BusinessId) -> Result<SecretString, GraphError> {
        installed::fetch_token(&self.graph, &self.metrics, owner).await
    }

    /// Graph's answer to whether the app is installed on `waba_id`, owned by `owner`.
    pub(super) async fn installed_on(&self, owner: &BusinessId, waba_id: &WabaId) -> Installed {
        installed::on_waba(&self.graph, &self.metrics, owner, waba_id).await
    }

    async fn install(&self, ev: &Install, cause: &DedupeKey) -> Result<Applied, Failure> {
        let mut applied = self.store.apply_install(ev).await?;
        let mut token: Option<SecretString> = None;
        if applied.tie {
            let Some((settled, fetched)) = tie::settle_install(self, ev).await? else {
                return Ok(Applied::Stale);
            };
            applied = settled;
            token = Some(fetched);
        }
        if applied.stale {
            info!(waba_id = %ev.waba_id, "install older than the tenant's state; ignored");
            return Ok(Applied::Stale);
        }
        // The business removed the integration since, or in the same second (Graph settles
        // that one; see `crate::effects::integration`).
        let ask = || self.installed_on(&ev.owner_business_id, &ev.waba_id);
        if let Some(applied) = removed_by_integration(&self.store, ev, ask).await? {
            return Ok(applied);
        }
        let (waba_id, time) = (&ev.waba_id, ev.event_time);
        self.emit(EventKind::Installed, cause, waba_id, time)
            .await?;
        if applied.needs_token() {
            let fetched = match token {
                Some(t) => t,
                None => match self.fetch_token(&ev.owner_business_id).await {
                    Ok(t) => t,
                    Err(e) => return self.graph_failure(ev, &e, Some(cause)).await,
                },
            };
            // Only for this install: an uninstall (and maybe a newer install) while the fetch
            // was in flight makes this token stale.
            let expiry = installed::expiry(
                &self.graph,
                &self.metrics,
                &self.app_id,
                &ev.waba_id,
                &fetched,
            )
            .await;
            let stored = self
                .vault
                .store_checked_token(&ev.waba_id, &fetched, unix_now(), ev.event_time, expiry)
                .await?;
            if !stored {
                info!(waba_id = %ev.waba_id, "install superseded while fetching; token discarded");
                return Ok(Applied::Stale);
            }
            info!(waba_id = %ev.waba_id, "business token stored");
            token = Some(fetched);
            self.emit(EventKind::TokenReady, cause, waba_id, time)
                .await?;
        } else if applied.token_status == Some(TokenStatus::Active) {
            // The install in effect again, its token held: a redelivery, maybe of an attempt
            // whose `tenant.token_ready` was never confirmed. Same id; consumers dedupe.
            self.emit(EventKind::TokenReady, cause, waba_id, time)
                .await?;
        }
        if self.subscribe_app && applied.needs_subscription() {
            let held = match self.held_token(ev, token.take()).await? {
                Ok(t) => t,
                Err(stale) => return Ok(stale),
            };
            if let Err(e) = self.graph.subscribe_app(&ev.waba_id, &held).await {
                return self.graph_failure(ev, &e, None).await;
            }
            self.store
                .mark_subscribed(&ev.waba_id, ev.event_time)
                .await?;
            info!(waba_id = %ev.waba_id, "app subscribed to the WABA");
            token = Some(held);
        }
        self.verify_phone_numbers(ev, token).await
    }

    /// Once a token is held, the record's phone numbers are Graph's list. A permanent
    /// failure leaves the claims in place (unverified) and is logged: the install stands.
    async fn verify_phone_numbers(
        &self,
        ev: &Install,
        token: Option<SecretString>,
    ) -> Result<Applied, Failure> {
        let verified = self
            .store
            .get(&ev.waba_id)
            .await?
            .is_some_and(|t| t.phone_numbers_verified);
        if verified {
            return Ok(Applied::Changed);
        }
        let held = match self.held_token(ev, token).await? {
            Ok(t) => t,
            Err(stale) => return Ok(stale),
        };
        let ids = match self.graph.phone_numbers(&ev.waba_id, &held).await {
            Ok(ids) => ids,
            Err(e) if !e.is_transient() => {
                warn!(waba_id = %ev.waba_id, error = %e.summary(),
                    "phone numbers not readable; the claimed ones stay unverified");
                return Ok(Applied::Changed);
            }
            Err(e) => return self.graph_failure(ev, &e, None).await,
        };
        if self
            .store
            .store_phone_numbers(&ev.waba_id, &ids, ev.event_time)
            .await?
        {
            info!(waba_id = %ev.waba_id, count = ids.len(), "phone numbers verified with Graph");
        }
        Ok(Applied::Changed)
    }

    /// The token just fetched, or the stored one; `Err(Applied::Stale)` if none is held
    /// because the install was superseded.
    async fn held_token(
        &self,
        ev: &Install,
        token: Option<SecretString>,
    ) -> Result<Result<SecretString, Applied>, Failure> {
        if let Some(t) = token {
            return Ok(Ok(t));
        }
        if let Some(t) = self.vault.token(&ev.waba_id).await? {
            return Ok(Ok(t));
        }
        if self.superseded(ev).await? {
            return Ok(Err(Applied::Stale));
        }
        Err(Failure::Retry {
            error: "no stored token to use".into(),
            after: None,
        })
    }

    /// Whether `ev` is no longer the install in effect: an uninstall or a newer install
    /// landed since it was applied.
    pub(super) async fn superseded(&self, ev: &Install) -> Result<bool, Failure> {
        let tenant = self.store.get(&ev.waba_id).await?;
        Ok(!tenant.is_some_and(|t| {
            t.status == Status::Installed
                && t.installed_at == Some(ev.event_time)
                && t.owner_business_id.as_ref() == Some(&ev.owner_business_id)
        }))
    }

    /// A Graph error during `ev`: stale if the install was superseded meanwhile (acked,
    /// never retried or dead-lettered); otherwise logged, and a permanent one on the token
    /// call (`token_call`: the change that asked for it) is recorded on the tenant
    /// (`token.status = failed`) and reported (`tenant.token_failed`) before the change goes
    /// to the dead-letter queue.
    async fn graph_failure(
        &self,
        ev: &Install,
        e: &GraphError,
        token_call: Option<&DedupeKey>,
    ) -> Result<Applied, Failure> {
        let waba_id = &ev.waba_id;
        let recorded = match token_call {
            Some(cause) if !e.is_transient() => {
                let recorded = self
                    .store
                    .mark_token_failed(waba_id, &e.summary(), ev.event_time)
                    .await?;
                if recorded {
                    self.emit(EventKind::TokenFailed, cause, waba_id, ev.event_time)
                        .await?;
                }
                recorded
            }
            _ => false,
        };
        if !recorded && self.superseded(ev).await? {
            info!(%waba_id, error = %e.summary(), "Graph error for a superseded install; stale");
            return Ok(Applied::Stale);
        }
        if e.is_transient() {
            warn!(%waba_id, error = %e.summary(), "transient Graph error");
        } else {
            warn!(%waba_id, error = %e.summary(), "permanent Graph error");
        }
        Err(Failure::graph(e))
    }

    pub(super) async fn uninstall(
        &self,
        ev: &Uninstall,
        cause: &DedupeKey,
    ) -> Result<Applied, Failure> {
        let before = self.store.get(&ev.waba_id).await?;
        let stored = self.store.apply_uninstall_unless_tied(ev).await?;
        let again = uninstalled_before(before.as_ref(), &stored, ev.event_time);
        let applied = if stored.tie {
            tie::settle_uninstall(self, ev).await?
        } else if stored.stale {
            Applied::Stale
        } else {
            info!(waba_id = %ev.waba_id, "uninstalled; business token destroyed");
            Applied::Changed
        };
        if applied == Applied::Changed && !again {
            self.emit(EventKind::Uninstalled, cause, &ev.waba_id, ev.event_time)
                .await?;
        }
        Ok(applied)
    }

    /// docs/REFERENCE.md, "Semantics": applied to the tenant whose WABA id, or the tenants
    /// whose owner business id, equals `entry.id`. Nothing matching yet goes through the
    /// delay tiers (its install may be on its way), then to the dead-letter queue. Never
    /// guess.
    async fn uninstall_by_entry(
        &self,
        entry_id: &WabaId,
        entry_owner: &BusinessId,
        event_time: i64,
        cause: &DedupeKey,
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
            return Err(Failure::Retry {
                error: format!(
                    "uninstall without waba_info: entry.id {entry_id} matches no known WABA or owner business (yet)"
                ),
                after: None,
            });
        }
        let mut any_applied = false;
        for waba_id in wabas {
            let ev = Uninstall {
                waba_id,
                owner_business_id: None,
                event_time,
            };
            any_applied |= self.uninstall(&ev, cause).await? == Applied::Changed;
        }
        Ok(if any_applied {
            Applied::Changed
        } else {
            Applied::Stale
        })
    }
}
