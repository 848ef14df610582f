//! Carrying out a tenant check: ask Graph about the tenant's token (`debug_token`, in
//! `token`, which also fetches a token about to expire), its subscription (`GET
//! subscribed_apps`, subscribing again) and its phone numbers, and record what was found in
//! one step tied to the install the check saw (`wa_store::Store::record_checked`).
//!
//! - Only installed tenants whose token was fetched are checked; a check never resurrects an
//!   uninstalled tenant (the record step refuses), and one whose tenant was uninstalled
//!   meanwhile changes nothing.
//! - One check per tenant at a time: a lease in the tenant's Redis slot, sized to the
//!   check's worst case ([`CHECK_CALLS`] Graph calls with their retries) and compared by
//!   every write of the check (a check whose lease ran out writes nothing). A check finding
//!   it held is requeued through the first delay tier ([`Failure::Busy`]), never dropped.
//! - Every write is tied to the install the check saw by its `status_time` *and* its install
//!   generation (`install_seq`, read before the record), so a reinstall at the same second
//!   is never written over. A refused write ends the check without effect: nothing more is
//!   recorded, published or sent to Graph.
//! - A permanent `190` on any use of the token is evidence that it is invalid.
//! - A transient Graph error records what was found so far, then retries through the delay
//!   tiers ([`Failure::graph`]).
//! - Tenant events (`crate::events`): `tenant.token_refreshed` and `tenant.token_invalid` are
//!   published, confirmed, *before* the new token is stored or the invalid one destroyed
//!   (and only once the store said the check still holds), with the record as it is about
//!   to be and the check's id as their cause: a publish that fails retries the check with
//!   nothing changed, and the retry publishes the same event id again. `token_invalid` is
//!   published whenever the token destroyed was active, including one this check stored.
//!
//! Decisions are `crate::plan::check`'s; never logs a token.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use tracing::{info, warn};
use wa_graph::{GraphClient, GraphError, token_invalid};
use wa_ids::{AppId, DedupeKey, WabaId};
use wa_store::{
    Attention, CheckFindings, CheckGuard, ClaimToken, Status, Store, TenantRecord, TokenStatus,
    TokenVault,
};

use crate::clock::unix_now;

mod token;
use crate::{
    events::{EventKind, TenantEvent, TenantEvents},
    metrics::{CheckOutcome, Metrics},
    outcome::{Applied, Failure},
    plan::check::{self, CheckMessage},
};

/// The most Graph calls one check makes in a row: `debug_token`, a token fetch, `debug_token`
/// of the new token, `GET subscribed_apps`, subscribing again, `GET phone_numbers`.
pub const CHECK_CALLS: u32 = 6;

/// Room in a check's lease for its Redis steps and confirmed publishes.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The effects of tenant checks.
#[derive(Clone)]
pub struct Checks {
    /// Tenant state.
    pub store: Store,
    /// Business tokens (the same store, with `WA_TOKEN_KEY`).
    pub vault: TokenVault,
    /// Meta's Graph API.
    pub graph: GraphClient,
    /// `WA_APP_ID`: whose subscription is checked, and the app access token of `debug_token`.
    pub app_id: AppId,
    /// `WA_SUBSCRIBE_APP`: the subscription is checked (and restored) only when set.
    pub subscribe_app: bool,
    /// `WA_TOKEN_REFRESH_BEFORE`.
    pub refresh_before: Duration,
    /// How long one check holds its tenant's lease at least (`WA_CLAIM_LEASE`); longer when
    /// [`CHECK_CALLS`] Graph calls may take longer ([`Checks::lease_ttl`]).
    pub lease: Duration,
    /// Counts checks and their Graph calls.
    pub metrics: Arc<Metrics>,
    /// Where `tenant.token_refreshed` and `tenant.token_invalid` are published.
    pub events: TenantEvents,
}

/// A check in progress: what it found so far.
struct Found {
    /// The check's id: the cause of its tenant events.
    cause: DedupeKey,
    findings: CheckFindings,
    /// Attention entries this check found.
    wrong: Vec<Attention>,
    /// Attention entries this check found fixed (or fine).
    fine: Vec<Attention>,
    /// Something was fixed.
    repaired: bool,
    /// What the check's writes are tied to.
    guard: CheckGuard,
    /// A write was refused (uninstalled, reinstalled or the lease lost): the check ends
    /// without effect.
    lost: bool,
    /// The record as this check's refresh left it, once a new token was stored.
    refreshed: Option<TenantRecord>,
}

impl Found {
    fn flag(&mut self, a: Attention) {
        self.wrong.push(a);
    }

    fn clear(&mut self, a: Attention) {
        self.fine.push(a);
    }

    /// A permanent `190`: the token is invalid.
    fn invalid(&mut self) {
        self.findings.invalid = true;
        self.flag(Attention::TokenInvalid);
        self.fine.push(Attention::TokenExpiring);
    }
}

impl Checks {
    /// How long a check's lease lasts: `WA_CLAIM_LEASE`, or the worst case of one check's
    /// Graph calls (each with its in-process retries) if that is longer.
    #[must_use]
    pub fn lease_ttl(&self) -> Duration {
        let calls = self.graph.call_budget().saturating_mul(CHECK_CALLS);
        self.lease.max(calls.saturating_add(LEASE_MARGIN))
    }

    /// Checks the tenant `message` names.
    ///
    /// Counts the outcome of a check that ends here; a failure is counted once settled.
    ///
    /// # Errors
    ///
    /// [`Failure::Busy`] while another check of the tenant runs; [`Failure`] from Redis or a
    /// Graph error that is not an answer about the tenant.
    pub async fn apply(&self, message: &CheckMessage) -> Result<Applied, Failure> {
        let waba_id = &message.waba_id;
        let Some(lease) = self.store.lease_check(waba_id, self.lease_ttl()).await? else {
            return Err(Failure::Busy {
                error: "another check of this tenant is running".into(),
            });
        };
        let result = self.check(waba_id, &message.id, &lease).await;
        if let Err(e) = self.store.release_check(waba_id, &lease).await {
            warn!(%waba_id, error = %e, "check lease not given back; it expires by itself");
        }
        // A failure is counted where it is settled (`CheckHandler::settled`): a retry may
        // still end in the dead-letter queue.
        let (applied, outcome) = result?;
        self.metrics.checks.check(outcome);
        info!(%waba_id, reason = %message.reason, outcome = outcome.as_str(), "tenant checked");
        Ok(applied)
    }

    async fn check(
        &self,
        waba_id: &WabaId,
        cause: &DedupeKey,
        lease: &ClaimToken,
    ) -> Result<(Applied, CheckOutcome), Failure> {
        let skipped = Ok((Applied::Stale, CheckOutcome::Skipped));
        // Before the record: an install in between makes every write of this check refused.
        let install_seq = self.store.install_seq(waba_id).await?;
        let Some(tenant) = self.store.get(waba_id).await? else {
            return skipped;
        };
        let (Status::Installed, Some(install_time)) = (tenant.status, tenant.installed_at) else {
            return skipped;
        };
        let held = match tenant.token.status {
            Some(TokenStatus::Active) => match self.vault.token(waba_id).await? {
                Some(token) => Some(token),
                None => return skipped,
            },
            Some(TokenStatus::Invalid) => None,
            _ => return skipped,
        };
        let mut found = Found {
            cause: cause.clone(),
            findings: CheckFindings {
                install_time,
                checked_at: unix_now(),
                invalid: false,
                expires_at: None,
                subscribed: None,
                attention: Vec::new(),
                phone_number_ids: None,
            },
            wrong: Vec::new(),
            fine: Vec::new(),
            repaired: false,
            guard: CheckGuard {
                install_seq,
                lease: lease.clone(),
            },
            lost: false,
            refreshed: None,
        };
        let failure = self.steps(&tenant, held, &mut found).await.err();
        if found.lost {
            info!(%waba_id, "uninstalled, reinstalled or lease lost while checked; nothing more done");
            return skipped;
        }
        found.findings.attention = check::attention(&tenant.attention, &found.wrong, &found.fine);
        let was_active = tenant.token.status == Some(TokenStatus::Active);
        if found.findings.invalid && (was_active || found.refreshed.is_some()) {
            if !self.holds(waba_id, &mut found).await? {
                return skipped;
            }
            let mut after = found.refreshed.clone().unwrap_or_else(|| tenant.clone());
            after.token.status = Some(TokenStatus::Invalid);
            after.token.checked_at = Some(found.findings.checked_at);
            after.attention.clone_from(&found.findings.attention);
            self.publish(EventKind::TokenInvalid, &found, &after)
                .await?;
        }
        let recorded = self
            .store
            .record_checked(waba_id, &found.findings, &found.guard);
        if !recorded.await? {
            info!(%waba_id, "uninstalled, reinstalled or lease lost while checked; nothing recorded");
            return skipped;
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        let outcome = if !found.findings.attention.is_empty() {
            CheckOutcome::Attention
        } else if found.repaired {
            CheckOutcome::Repaired
        } else {
            CheckOutcome::Healthy
        };
        Ok((Applied::Changed, outcome))
    }

    /// The Graph steps; an `Err` is a failure to report after what was found is recorded.
    async fn steps(
        &self,
        tenant: &TenantRecord,
        held: Option<SecretString>,
        found: &mut Found,
    ) -> Result<(), Failure> {
        let token = self.token_step(tenant, held, found).await?;
        let Some(token) = token.filter(|_| !found.lost) else {
            return Ok(());
        };
        let waba_id = &tenant.waba_id;
        if self.subscribe_app && !self.subscription_step(waba_id, &token, found).await? {
            return Ok(());
        }
        let listed = self.graph.phone_numbers(waba_id, &token).await;
        self.metrics.checks.graph_call("phone_numbers", &listed);
        match listed {
            Ok(ids) => found.findings.phone_number_ids = Some(ids),
            Err(e) => evidence(waba_id, &e, found)?,
        }
        Ok(())
    }

    /// Whether the install the check saw is still in effect and its lease held; when not, the
    /// check is marked lost (it ends without effect).
    async fn holds(&self, waba_id: &WabaId, found: &mut Found) -> Result<bool, Failure> {
        let holds = self
            .store
            .check_holds(waba_id, found.findings.install_time, &found.guard);
        found.lost = !holds.await?;
        Ok(!found.lost)
    }

    /// Publishes the tenant event `kind` with `after` (the record as this check is about to
    /// leave it), confirmed.
    async fn publish(
        &self,
        kind: EventKind,
        found: &Found,
        after: &TenantRecord,
    ) -> Result<(), Failure> {
        let event = TenantEvent::new(kind, found.cause.as_str(), found.findings.checked_at, after);
        self.events.publish(event).await
    }

    /// `GET subscribed_apps`, and subscribing again when our app is missing. `false` when
    /// the token turned out invalid (the next steps are skipped).
    async fn subscription_step(
        &self,
        waba_id: &WabaId,
        token: &SecretString,
        found: &mut Found,
    ) -> Result<bool, Failure> {
        let listed = self.graph.subscribed_apps(waba_id, token).await;
        self.metrics.checks.graph_call("subscribed_apps", &listed);
        let apps = match listed {
            Ok(apps) => apps,
            Err(e) => {
                evidence(waba_id, &e, found)?;
                return Ok(!found.findings.invalid);
            }
        };
        if check::is_subscribed(&apps, self.app_id.as_str()) {
            found.findings.subscribed = Some(true);
            found.clear(Attention::NotSubscribed);
            return Ok(true);
        }
        warn!(%waba_id, "our app is not subscribed to the WABA; subscribing again");
        let subscribed = self.graph.subscribe_app(waba_id, token).await;
        self.metrics.checks.graph_call("subscribe_app", &subscribed);
        match subscribed {
            Ok(()) => {
                info!(%waba_id, "app subscribed to the WABA again");
                found.findings.subscribed = Some(true);
                found.clear(Attention::NotSubscribed);
                found.repaired = true;
                Ok(true)
            }
            Err(e) if e.is_transient() => Err(Failure::graph(&e)),
            Err(e) => {
                found.findings.subscribed = Some(false);
                found.flag(Attention::NotSubscribed);
                evidence(waba_id, &e, found)?;
                Ok(!found.findings.invalid)
            }
        }
    }
}

/// A Graph error on a use of the token: a permanent `190` is evidence the token is invalid;
/// a transient one is retried; any other permanent one is logged and the check goes on.
fn evidence(waba_id: &WabaId, e: &GraphError, found: &mut Found) -> Result<(), Failure> {
    if token_invalid(e) {
        warn!(%waba_id, error = %e.summary(), "Graph refused the business token");
        found.invalid();
        return Ok(());
    }
    if e.is_transient() {
        return Err(Failure::graph(e));
    }
    warn!(%waba_id, error = %e.summary(), "permanent Graph error during a check");
    Ok(())
}
