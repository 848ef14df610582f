//! Carrying out a [`Plan`]: tenant state in Redis and the Graph API calls, each step
//! idempotent so that a redelivery resumes where a crashed attempt stopped.
//!
//! The result is an [`Outcome`]; what happens to the message (ack, delay tier, dead-letter
//! queue) is the consumer's business.

use std::time::Duration;

use secrecy::SecretString;
use tracing::{info, warn};
use wa_graph::{GraphClient, GraphError};
use wa_ids::{BusinessId, WabaId};
use wa_store::{Install, Store, StoreError, TokenVault, Uninstall};

use crate::{decide::Plan, metrics::Metrics};

/// How processing one change ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every effect is durable.
    Applied,
    /// Ignored: the tenant already reflects a newer event.
    Stale,
    /// A transient failure: try again later (delay tier), at the earliest after `after`.
    Retry {
        /// Token-free description of the failure.
        error: String,
        /// The server's requested pause, when it gave one.
        after: Option<Duration>,
    },
    /// Cannot succeed as it is: to the dead-letter queue.
    DeadLetter {
        /// Why, for the `x-wa-reason` header and operators.
        reason: String,
    },
}

impl Outcome {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Retry { .. } => "retry",
            Self::DeadLetter { .. } => "dead_letter",
        }
    }
}

impl From<StoreError> for Outcome {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Self::Retry {
                error: format!("redis: {e}"),
                after: None,
            }
        } else {
            Self::DeadLetter {
                reason: format!("store: {e}"),
            }
        }
    }
}

/// What the processing step needs.
#[derive(Clone)]
pub struct Effects {
    /// Tenant state.
    pub store: Store,
    /// Business tokens (the same store, with `WA_TOKEN_KEY`).
    pub vault: TokenVault,
    /// Meta's Graph API.
    pub graph: GraphClient,
    /// Subscribe the app to each installed WABA (`WA_SUBSCRIBE_APP`).
    pub subscribe_app: bool,
    /// Counters.
    pub metrics: std::sync::Arc<Metrics>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Effects {
    /// Carries out `plan`.
    pub async fn run(&self, plan: Plan) -> Outcome {
        let result = match plan {
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
            } => self
                .store
                .apply_account_event(&waba_id, &event, &value, event_time)
                .await
                .map(|applied| {
                    if applied.stale {
                        Outcome::Stale
                    } else {
                        Outcome::Applied
                    }
                })
                .map_err(Outcome::from),
            Plan::Session(session) => self.session(&session).await,
            Plan::IntegrationInstall {
                business_id,
                event_time,
            } => self.integration_install(&business_id, event_time).await,
            Plan::IntegrationUninstall {
                business_id,
                event_time,
            } => self.integration_uninstall(&business_id, event_time).await,
            Plan::Reject(reason) => Err(Outcome::DeadLetter { reason }),
        };
        result.unwrap_or_else(|outcome| outcome)
    }

    async fn install(&self, ev: &Install) -> Result<Outcome, Outcome> {
        let applied = self.store.apply_install(ev).await?;
        if applied.stale {
            info!(waba_id = %ev.waba_id, "install older than the tenant's state; ignored");
            return Ok(Outcome::Stale);
        }
        // The business removed the integration since (see `crate::integration`).
        if let Some(outcome) = self.removed_by_integration(ev).await? {
            return Ok(outcome);
        }
        let mut token: Option<SecretString> = None;
        if applied.needs_token() {
            let fetched = self.graph.fetch_business_token(&ev.owner_business_id).await;
            self.metrics.token_fetch(&fetched);
            let fetched = match fetched {
                Ok(t) => t,
                Err(e) => return Err(self.graph_failure(ev, e, true).await),
            };
            // Only for this install: an uninstall (and maybe a newer install) while the fetch
            // was in flight makes this token stale.
            let stored = self
                .vault
                .store_token(&ev.waba_id, &fetched, now(), ev.event_time)
                .await?;
            if !stored {
                info!(waba_id = %ev.waba_id, "install superseded while fetching; token discarded");
                return Ok(Outcome::Stale);
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
                        return Err(Outcome::Retry {
                            error: "no stored token to subscribe with".into(),
                            after: None,
                        });
                    }
                },
            };
            if let Err(e) = self.graph.subscribe_app(&ev.waba_id, &token).await {
                return Err(self.graph_failure(ev, e, false).await);
            }
            self.store
                .mark_subscribed(&ev.waba_id, ev.event_time)
                .await?;
            info!(waba_id = %ev.waba_id, "app subscribed to the WABA");
        }
        Ok(Outcome::Applied)
    }

    async fn graph_failure(&self, ev: &Install, e: GraphError, token_call: bool) -> Outcome {
        let waba_id = &ev.waba_id;
        if e.is_transient() {
            warn!(%waba_id, error = %e.summary(), "transient Graph error");
            return Outcome::Retry {
                error: e.summary(),
                after: e.retry_after(),
            };
        }
        warn!(%waba_id, error = %e.summary(), "permanent Graph error");
        if token_call
            && let Err(store) = self
                .store
                .mark_token_failed(waba_id, &e.summary(), ev.event_time)
                .await
        {
            return Outcome::from(store);
        }
        Outcome::DeadLetter {
            reason: format!("graph: {}", e.summary()),
        }
    }

    async fn uninstall(&self, ev: &Uninstall) -> Result<Outcome, Outcome> {
        let applied = self.store.apply_uninstall(ev).await?;
        if applied.stale {
            return Ok(Outcome::Stale);
        }
        info!(waba_id = %ev.waba_id, "uninstalled; business token destroyed");
        Ok(Outcome::Applied)
    }

    /// SPEC: applied to the tenant whose WABA id, or the tenants whose owner business id,
    /// equals `entry.id`; nothing matching goes to the dead-letter queue. Never guess.
    async fn uninstall_by_entry(
        &self,
        entry_id: &WabaId,
        entry_owner: &BusinessId,
        event_time: i64,
    ) -> Result<Outcome, Outcome> {
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
            return Err(Outcome::DeadLetter {
                reason: format!(
                    "uninstall without waba_info: entry.id {entry_id} matches no known WABA or owner business"
                ),
            });
        }
        let mut any_applied = false;
        for waba_id in wabas {
            let ev = Uninstall {
                waba_id,
                owner_business_id: None,
                event_time,
            };
            any_applied |= self.uninstall(&ev).await? == Outcome::Applied;
        }
        Ok(if any_applied {
            Outcome::Applied
        } else {
            Outcome::Stale
        })
    }
}
