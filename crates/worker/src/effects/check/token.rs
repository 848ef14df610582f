//! The token part of a tenant check: `debug_token` on the held token, and when it expires
//! within `WA_TOKEN_REFRESH_BEFORE` (or is known invalid) a new token fetched, asked about in
//! turn, and stored in place of the old one (destroyed in the same step) only if it is
//! valid and expires later. `tenant.token_refreshed` is published, confirmed, before the new
//! token is stored, once the store said the check still holds.
//!
//! Works on the check in progress (`super::Found`) for `super::Checks`; the subscription,
//! phone numbers and recording are the parent module's. Never logs a token.

use secrecy::SecretString;
use tracing::{info, warn};
use wa_store::{Attention, TenantRecord, TokenExpiry, TokenStatus};

use super::{Checks, Found};
use crate::{
    effects::installed,
    events::EventKind,
    outcome::Failure,
    plan::check::{self, TokenVerdict},
};

impl Checks {
    /// `debug_token`, and a new token when the held one expires soon (or is known invalid):
    /// the token the next steps use, `None` when there is none to use.
    pub(super) async fn token_step(
        &self,
        tenant: &TenantRecord,
        held: Option<SecretString>,
        found: &mut Found,
    ) -> Result<Option<SecretString>, Failure> {
        let waba_id = &tenant.waba_id;
        let Some(token) = held else {
            // Known invalid: a new fetch is the only way back.
            found.flag(Attention::TokenInvalid);
            return self.refresh(tenant, found).await;
        };
        let health = installed::health(&self.graph, &self.metrics, &self.app_id, &token).await;
        let health = health.map_err(|e| {
            warn!(%waba_id, error = %e.summary(), "debug_token failed");
            Failure::graph(&e)
        })?;
        match check::token_verdict(&health, found.findings.checked_at, self.refresh_before) {
            TokenVerdict::Invalid => {
                warn!(%waba_id, code = ?health.error_code, subcode = ?health.error_subcode,
                    "business token invalid");
                found.invalid();
                Ok(None)
            }
            TokenVerdict::Healthy { expires_at } => {
                found.findings.expires_at = expires_at;
                found.clear(Attention::TokenExpiring);
                found.clear(Attention::TokenInvalid);
                Ok(Some(token))
            }
            TokenVerdict::Expiring { expires_at } => {
                found.findings.expires_at = Some(expires_at);
                found.flag(Attention::TokenExpiring);
                match self.refresh(tenant, found).await? {
                    Some(fresh) => Ok(Some(fresh)),
                    None => Ok(Some(token)),
                }
            }
        }
    }

    /// Fetches a new token for the tenant and stores it in place of the old one (destroyed
    /// in the same step), with its expiry. `None` (attention left as flagged) when that
    /// fails for good or the new token is no better.
    async fn refresh(
        &self,
        tenant: &TenantRecord,
        found: &mut Found,
    ) -> Result<Option<SecretString>, Failure> {
        let waba_id = &tenant.waba_id;
        let Some(owner) = &tenant.owner_business_id else {
            return Ok(None);
        };
        // Counted as a check's Graph call, not under wa_worker_token_fetches_total: a refresh
        // failing for good leaves the tenant installed, unlike an install's fetch.
        let fetched = self.graph.fetch_business_token(owner).await;
        self.metrics.checks.graph_call("token_refresh", &fetched);
        let fresh = match fetched {
            Ok(fresh) => fresh,
            Err(e) if e.is_transient() => return Err(Failure::graph(&e)),
            Err(e) => {
                warn!(%waba_id, error = %e.summary(), "token refresh failed");
                return Ok(None);
            }
        };
        let health = installed::health(&self.graph, &self.metrics, &self.app_id, &fresh).await;
        let health = health.map_err(|e| Failure::graph(&e))?;
        let now = found.findings.checked_at;
        let verdict = check::token_verdict(&health, now, self.refresh_before);
        if verdict == TokenVerdict::Invalid {
            warn!(%waba_id, "a new token was fetched but Graph says it is invalid too");
            return Ok(None);
        }
        // Stored if it expires later, but still flagged if it too expires within the window
        // (also when it replaces a token known invalid, which had no expiry to compare).
        let (fixed, still): (&[Attention], &[Attention]) = match verdict {
            TokenVerdict::Expiring { .. } => {
                (&[Attention::TokenInvalid], &[Attention::TokenExpiring])
            }
            _ => (&[Attention::TokenExpiring, Attention::TokenInvalid], &[]),
        };
        if !check::refresh_gains(found.findings.expires_at, health.expires_at) {
            // Meta's `fetch_only=true` may hand back the very token held: nothing repaired.
            warn!(%waba_id, "the fetched token expires no later than the old one");
            return Ok(None);
        }
        let expiry = health.expires_at.map(|expires_at| TokenExpiry {
            expires_at,
            checked_at: now,
        });
        let mut after = tenant.clone();
        after.token.status = Some(TokenStatus::Active);
        after.token.fetched_at = Some(now);
        after.token.expires_at = health.expires_at;
        after.token.checked_at = Some(now);
        after.token.error = None;
        after.attention = check::attention(&tenant.attention, still, fixed);
        if !self.holds(waba_id, found).await? {
            return Ok(None);
        }
        self.publish(EventKind::TokenRefreshed, found, &after)
            .await?;
        let install_time = found.findings.install_time;
        let stored = self
            .vault
            .store_refreshed_token(waba_id, &fresh, now, install_time, expiry, &found.guard)
            .await?;
        if !stored {
            found.lost = true;
            return Ok(None);
        }
        found.refreshed = Some(after);
        info!(%waba_id, expires_at = ?health.expires_at, "business token refreshed");
        found.findings.expires_at = health.expires_at;
        found.findings.invalid = false;
        found.wrong.retain(|a| !fixed.contains(a));
        for a in fixed {
            found.clear(*a);
        }
        for a in still {
            found.flag(*a);
        }
        found.repaired = true;
        Ok(Some(fresh))
    }
}
