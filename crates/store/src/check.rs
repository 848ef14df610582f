//! Tenant checks (`wa.tenant_checks`): the lease that keeps two workers from checking one
//! tenant at once, and recording what a check found, in one atomic step tied to the install
//! the check saw and the lease it holds ([`Store::record_checked`]).
//!
//! The lease is `{prefix}check:{<waba_id>}`, in the tenant's hash slot, holding a random
//! token for a TTL (so a crashed worker's lease runs out), taken and given back with the same
//! scripts as dedupe claims. Never sees a token's plaintext: storing a refreshed token is
//! [`crate::TokenVault`]'s.

use std::time::Duration;

use wa_ids::{PhoneNumberId, WabaId};

use crate::{
    Attention, ClaimToken, Result, Store, StoreError,
    dedupe::{CLAIM, RELEASE},
    durable::Eval,
    phones::MAX_VERIFIED_PHONE_NUMBERS,
};

static CHECK: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("scripts/check.lua")));
static CHECK_HOLDS: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("scripts/check_holds.lua")));

/// What ties a check's writes to what it saw: the install generation it read before the
/// record (`install_seq`, bumped by every install that is not a redelivery, so a same-second
/// reinstall is told apart) and the lease it holds (a check whose lease ran out writes
/// nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckGuard {
    /// The tenant's install generation, read with [`Store::install_seq`] before the record.
    pub install_seq: i64,
    /// The check's lease, from [`Store::lease_check`].
    pub lease: ClaimToken,
}

/// What one tenant check found, to be recorded on the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFindings {
    /// The `event_time` of the install the check saw in effect: nothing is recorded unless it
    /// is still the one in effect.
    pub install_time: i64,
    /// When Graph was asked, unix seconds.
    pub checked_at: i64,
    /// Graph no longer accepts the token: it is destroyed and its status becomes `invalid`.
    pub invalid: bool,
    /// The token's expiry as `debug_token` said (`0` = never); `None` leaves it as it is.
    pub expires_at: Option<i64>,
    /// Whether our app is subscribed; `None` when the check could not tell.
    pub subscribed: Option<bool>,
    /// Everything the check found wrong and could not fix (replaces the record's list).
    pub attention: Vec<Attention>,
    /// Graph's phone number ids for the WABA; `None` when not read.
    pub phone_number_ids: Option<Vec<PhoneNumberId>>,
}

impl Store {
    /// Takes the check lease of `waba_id` for `ttl`; `None` while another check holds it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    #[tracing::instrument(name = "redis lease_check", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn lease_check(&self, waba_id: &WabaId, ttl: Duration) -> Result<Option<ClaimToken>> {
        let token = ClaimToken::random();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let acquired: i64 = CLAIM
            .key(self.keys.check(waba_id))
            .arg(token.as_str())
            .arg(ms)
            .invoke_async(&mut self.conn())
            .await?;
        Ok((acquired == 1).then_some(token))
    }

    /// The tenant's install generation (`0` before any install). Read it *before* the record:
    /// an install in between then makes the check's writes refused, never wrongly accepted.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn install_seq(&self, waba_id: &WabaId) -> Result<i64> {
        let seq: Option<i64> = redis::cmd("HGET")
            .arg(self.keys.tenant(waba_id))
            .arg("install_seq")
            .query_async(&mut self.conn())
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Whether a check that saw the install at `install_time` still holds: that install is
    /// the one in effect (same install generation) and `guard`'s lease is still held. Asked
    /// before a check publishes an event for a change it is about to make.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn check_holds(
        &self,
        waba_id: &WabaId,
        install_time: i64,
        guard: &CheckGuard,
    ) -> Result<bool> {
        let holds: i64 = CHECK_HOLDS
            .key(self.keys.tenant(waba_id))
            .key(self.keys.check(waba_id))
            .arg(install_time)
            .arg(guard.install_seq)
            .arg(guard.lease.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(holds == 1)
    }

    /// Gives the check lease of `waba_id` back, if `token` still holds it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    #[tracing::instrument(name = "redis release_check", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn release_check(&self, waba_id: &WabaId, token: &ClaimToken) -> Result<()> {
        let _: i64 = RELEASE
            .key(self.keys.check(waba_id))
            .arg(token.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Records `findings` on the tenant, only while the install the check saw is still the
    /// one in effect (its `status_time` and install generation, as `guard` read it), its
    /// token was held (`active` or `invalid`) and `guard`'s lease is still held: a check
    /// never resurrects an uninstalled tenant, nor writes after losing its lease. Returns
    /// whether it was recorded.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::InvalidInput`] for more than
    /// [`MAX_VERIFIED_PHONE_NUMBERS`] phone number ids.
    #[tracing::instrument(name = "redis record_check", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn record_checked(
        &self,
        waba_id: &WabaId,
        findings: &CheckFindings,
        guard: &CheckGuard,
    ) -> Result<bool> {
        let key = self.keys.tenant(waba_id);
        let phones = match &findings.phone_number_ids {
            Some(ids) if ids.len() > MAX_VERIFIED_PHONE_NUMBERS => {
                return Err(StoreError::InvalidInput {
                    what: "phone_number_ids",
                    value: ids.len().to_string(),
                    reason: "more ids than a record keeps",
                });
            }
            Some(ids) => json(&key, ids)?,
            None => String::new(),
        };
        let mut attention = findings.attention.clone();
        attention.sort_unstable();
        attention.dedup();
        // A check's findings change the tenant (and may destroy its token): a durable write,
        // waited for on a cluster like every other tenant write.
        let mut conn = self.conn();
        let recorded: i64 = conn
            .eval(
                Eval::new(&CHECK)
                    .key(&key)
                    .key(self.keys.token(waba_id))
                    .key(self.keys.check(waba_id))
                    .arg(findings.install_time)
                    .arg(findings.checked_at)
                    .arg(if findings.invalid { "1" } else { "" })
                    .arg(findings.expires_at.map_or(String::new(), |t| t.to_string()))
                    .arg(match findings.subscribed {
                        Some(true) => "1",
                        Some(false) => "0",
                        None => "",
                    })
                    .arg(json(&key, &attention)?)
                    .arg(phones)
                    .arg(guard.install_seq)
                    .arg(guard.lease.as_str()),
            )
            .await?;
        Ok(recorded == 1)
    }
}

/// JSON text of a list a check writes (Lua never re-encodes it).
fn json(key: &str, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt(key, e.to_string()))
}

/// The Lua arguments of a guard: install_seq and lease token, `''` when not compared.
pub(crate) fn guard_args(guard: Option<&CheckGuard>) -> (String, String) {
    guard.map_or((String::new(), String::new()), |g| {
        (g.install_seq.to_string(), g.lease.as_str().to_owned())
    })
}
