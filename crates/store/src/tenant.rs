//! Install, uninstall and the token lifecycle of one tenant, each an atomic script.
//!
//! It records a token's *status* (pending, failed, revoked) and destroys a stored token on
//! uninstall, but never sees a token's plaintext or the token key: sealing and opening are
//! [`crate::TokenVault`]'s.
//!
//! Ordering rules (all times are Meta's `entry.time`, unix seconds):
//!
//! - Install and uninstall are ordered by the time of the newest one applied (kept in the
//!   hash as `status_time`). An older one is ignored ([`Applied::stale`]); re-applying the
//!   same event changes nothing. An install and an uninstall at the same second are a tie
//!   ([`Applied::tie`]) that `entry.time` cannot settle: the install is not applied and the
//!   uninstall ([`Store::apply_uninstall_unless_tied`]) not either, so that the worker asks
//!   Graph, then applies the side Graph confirms ([`Store::apply_install_at_tie`],
//!   [`Store::apply_uninstall`]).
//! - Only a redelivery of the install in effect keeps the stored token: an install that
//!   follows an uninstall, or names another owner business, destroys it, so the new
//!   installation gets its own token and subscription.
//! - Account events do not take part in that order (they have their own, per attribute), so
//!   an install is never ignored because some unrelated account event was newer. They do
//!   move `last_event_time`, which is the newest time applied by any event.
//! - A token is stored only while the install that asked for it is still the one in effect
//!   (status `installed` and `status_time` equal to that install's event time), in the same
//!   atomic step as the check. So a fetch that raced an uninstall cannot resurrect a token,
//!   and one that outlived an uninstall *and* a newer install cannot replace the newer
//!   install's token. Recording a fetch failure or a subscription is tied to its install the
//!   same way.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use wa_ids::{AppId, BusinessId, SolutionId, WabaId};

use crate::{Result, Status, Store, StoreError, TenantRecord, TokenStatus, durable::Eval};

static INSTALL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/install.lua")));
static UNINSTALL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/uninstall.lua")));
static MARK_FAILED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/mark_failed.lua")));
static MARK_SUBSCRIBED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/mark_subscribed.lua")));

/// A `PARTNER_APP_INSTALLED` event, from `value.waba_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// `waba_info.waba_id`.
    pub waba_id: WabaId,
    /// `waba_info.owner_business_id`.
    pub owner_business_id: BusinessId,
    /// `waba_info.partner_app_id`, when the event carried it.
    pub partner_app_id: Option<AppId>,
    /// `waba_info.solution_id`, when installed through a Multi-Partner Solution.
    pub solution_id: Option<SolutionId>,
    /// `waba_info.solution_partner_business_ids` (empty when absent).
    pub solution_partner_business_ids: Vec<BusinessId>,
    /// `entry.time`, unix seconds.
    pub event_time: i64,
}

/// A `PARTNER_APP_UNINSTALLED` event, once the worker has resolved which WABA it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uninstall {
    /// The WABA the app was removed from.
    pub waba_id: WabaId,
    /// `waba_info.owner_business_id`, when the event carried it. Only fills a record that
    /// has no owner yet; never overwrites the install's.
    pub owner_business_id: Option<BusinessId>,
    /// `entry.time`, unix seconds.
    pub event_time: i64,
}

/// What applying an event did, and where the tenant stands afterwards.
///
/// The worker needs two answers: was the event applied ([`Applied::stale`]), and, for an
/// install, is there work left ([`Applied::needs_token`], [`Applied::needs_subscription`]).
/// A redelivered install that was already applied counts as applied (it is the install in
/// effect), so a worker that crashed after applying it but before fetching the token
/// resumes where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// `true` if the event was ignored because the record already reflects a newer one (or,
    /// for an install, an uninstall at the same second). Nothing was changed then.
    pub stale: bool,
    /// The status before this event; `None` if no install or uninstall had been applied yet.
    pub previous_status: Option<Status>,
    /// The status now (after the event, or unchanged if stale).
    pub status: Status,
    /// The token status now; `None` while the tenant has never been seen installed.
    pub token_status: Option<TokenStatus>,
    /// Whether the app is subscribed to the WABA now.
    pub subscribed: bool,
    /// `true` if the event was not applied because it ties (same `entry.time`) with the
    /// opposite event in effect: only Graph can say which one stands. `stale` is `true` too.
    pub tie: bool,
}

impl Applied {
    /// The tenant is installed (by this event) and its token still has to be fetched:
    /// token status `pending` or `failed` (a replayed install retries a failed fetch).
    #[must_use]
    pub fn needs_token(&self) -> bool {
        !self.stale
            && self.status == Status::Installed
            && self.token_status != Some(TokenStatus::Active)
    }

    /// The tenant is installed (by this event) and the app is not yet subscribed to it.
    #[must_use]
    pub fn needs_subscription(&self) -> bool {
        !self.stale && self.status == Status::Installed && !self.subscribed
    }

    /// Reads the script's `{applied, previous, status, token status, subscribed, ...}` reply.
    pub(crate) fn from_reply(
        key: &str,
        applied: i64,
        previous: &str,
        status: &str,
        token_status: &str,
        subscribed: &str,
        tie: i64,
    ) -> Result<Self> {
        let bad = |what: &str, v: &str| StoreError::corrupt(key, format!("{what} {v:?}"));
        let parse_status = |v: &str| Status::parse(v).ok_or_else(|| bad("status", v));
        Ok(Self {
            stale: applied == 0,
            previous_status: match previous {
                "" => None,
                v => Some(parse_status(v)?),
            },
            status: match status {
                "" => Status::Uninstalled,
                v => parse_status(v)?,
            },
            token_status: match token_status {
                "" => None,
                v => Some(TokenStatus::parse(v).ok_or_else(|| bad("token status", v))?),
            },
            subscribed: subscribed == "1",
            tie: tie == 1,
        })
    }
}

/// The reply of the install and uninstall scripts.
type StatusReply = (i64, String, String, String, String, String, i64);

impl Store {
    /// Applies `PARTNER_APP_INSTALLED`: status `installed`, `installed_at` = the event time,
    /// `uninstalled_at` cleared, the app/solution fields replaced, and token status
    /// `pending`, unless this is the installation in effect again (installed, same owner)
    /// with its token active: then the token is kept. Otherwise a stored token is destroyed
    /// and `subscribed` and `phone_numbers_verified` are cleared.
    ///
    /// At the same second as the uninstall in effect nothing is applied and
    /// [`Applied::tie`] is set: see [`Store::apply_install_at_tie`].
    ///
    /// Also adds the WABA to its owner's index, idempotently, outside the atomic step.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn apply_install(&self, ev: &Install) -> Result<Applied> {
        self.install(ev, false).await
    }

    /// As [`Store::apply_install`], but applied at a tie with an uninstall too: for when
    /// Graph confirmed the app is installed (a business token fetch succeeded).
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn apply_install_at_tie(&self, ev: &Install) -> Result<Applied> {
        self.install(ev, true).await
    }

    #[tracing::instrument(name = "redis apply_install", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    async fn install(&self, ev: &Install, at_tie: bool) -> Result<Applied> {
        let mut conn = self.conn();
        // Index first: the index may list a WABA whose install is not applied (yet), never
        // the reverse. `tenants_owned_by` checks every entry against the record.
        let owner = self.keys.owner(&ev.owner_business_id);
        let () = conn.write(sadd(&owner, &ev.waba_id), &owner).await?;
        let key = self.keys.tenant(&ev.waba_id);
        let partners = serde_json::to_string(&ev.solution_partner_business_ids)
            .map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
        let (applied, prev, status, token, subscribed, prev_owner, tie): StatusReply = conn
            .eval(
                Eval::new(&INSTALL)
                    .key(&key)
                    .key(self.keys.token(&ev.waba_id))
                    .arg(ev.waba_id.as_str())
                    .arg(ev.event_time)
                    .arg(ev.owner_business_id.as_str())
                    .arg(ev.partner_app_id.as_ref().map_or("", AppId::as_str))
                    .arg(ev.solution_id.as_ref().map_or("", SolutionId::as_str))
                    .arg(partners)
                    .arg(if at_tie { "1" } else { "" }),
            )
            .await?;
        if applied == 1 && !prev_owner.is_empty() && ev.owner_business_id != prev_owner.as_str() {
            // The WABA changed hands: the old owner's index entry is no longer true.
            let prev_owner = BusinessId::try_from(prev_owner)
                .map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
            let () = conn
                .srem(self.keys.owner(&prev_owner), ev.waba_id.as_str())
                .await?;
        }
        let out = Applied::from_reply(&key, applied, &prev, &status, &token, &subscribed, tie)?;
        tracing::debug!(waba_id = %ev.waba_id, event_time = ev.event_time, stale = out.stale,
            tie = out.tie, "install applied");
        Ok(out)
    }

    /// Applies `PARTNER_APP_UNINSTALLED`: status `uninstalled`, `uninstalled_at` = the event
    /// time, the stored token destroyed, token status `revoked` (if the tenant ever had one),
    /// `subscribed` false. For a WABA never seen, creates the record (status `uninstalled`,
    /// token status `null`), so that its install, arriving late, is ignored as older.
    /// At the same second as the install in effect it is applied (see
    /// [`Store::apply_uninstall_unless_tied`] to ask Graph first).
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn apply_uninstall(&self, ev: &Uninstall) -> Result<Applied> {
        self.uninstall(ev, false).await
    }

    /// As [`Store::apply_uninstall`], except at the same second as the install in effect:
    /// then nothing is changed and [`Applied::tie`] is set, for the worker to ask Graph.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    pub async fn apply_uninstall_unless_tied(&self, ev: &Uninstall) -> Result<Applied> {
        self.uninstall(ev, true).await
    }

    #[tracing::instrument(name = "redis apply_uninstall", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    async fn uninstall(&self, ev: &Uninstall, report_tie: bool) -> Result<Applied> {
        let mut conn = self.conn();
        if let Some(owner) = &ev.owner_business_id {
            let owner = self.keys.owner(owner);
            let () = conn.write(sadd(&owner, &ev.waba_id), &owner).await?;
        }
        let key = self.keys.tenant(&ev.waba_id);
        let (applied, prev, status, token, subscribed, _, tie): StatusReply = conn
            .eval(
                Eval::new(&UNINSTALL)
                    .key(&key)
                    .key(self.keys.token(&ev.waba_id))
                    .arg(ev.waba_id.as_str())
                    .arg(ev.event_time)
                    .arg(ev.owner_business_id.as_ref().map_or("", BusinessId::as_str))
                    .arg(if report_tie { "1" } else { "" }),
            )
            .await?;
        let out = Applied::from_reply(&key, applied, &prev, &status, &token, &subscribed, tie)?;
        tracing::debug!(waba_id = %ev.waba_id, event_time = ev.event_time, stale = out.stale,
            tie = out.tie, "uninstall applied");
        Ok(out)
    }

    /// Records that fetching the token failed permanently: token status `failed` with
    /// `error` (a Graph error message: never put a token in it).
    ///
    /// Does nothing unless the install whose fetch failed (`install_time`, its
    /// [`Install::event_time`]) is still the one in effect, as for
    /// [`crate::TokenVault::store_token`]: the failure of a fetch that outlived an uninstall
    /// and a newer install must not be recorded against the newer one. Does nothing either if
    /// the token is already active. Returns whether it was recorded.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    #[tracing::instrument(name = "redis mark_token_failed", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn mark_token_failed(
        &self,
        waba_id: &WabaId,
        error: &str,
        install_time: i64,
    ) -> Result<bool> {
        let key = self.keys.tenant(waba_id);
        let mut conn = self.conn();
        let recorded: i64 = conn
            .eval(
                Eval::new(&MARK_FAILED)
                    .key(&key)
                    .arg(error)
                    .arg(install_time),
            )
            .await?;
        Ok(recorded == 1)
    }

    /// Records that the app is subscribed to the WABA (`subscribed: true`).
    ///
    /// Does nothing unless the install that subscribed (`install_time`, its
    /// [`Install::event_time`]) is still the one in effect, as for
    /// [`crate::TokenVault::store_token`]: an uninstall that raced the subscription leaves the
    /// tenant unsubscribed, and a newer install that followed it subscribes on its own account.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    #[tracing::instrument(name = "redis mark_subscribed", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn mark_subscribed(&self, waba_id: &WabaId, install_time: i64) -> Result<()> {
        let key = self.keys.tenant(waba_id);
        let mut conn = self.conn();
        let _: i64 = conn
            .eval(Eval::new(&MARK_SUBSCRIBED).key(&key).arg(install_time))
            .await?;
        Ok(())
    }

    /// The tenant record, or `None` for a WABA never seen.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::Corrupt`] if the hash cannot be read back.
    #[tracing::instrument(name = "redis get", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn get(&self, waba_id: &WabaId) -> Result<Option<TenantRecord>> {
        let key = self.keys.tenant(waba_id);
        let fields: std::collections::HashMap<String, String> = self.conn().hgetall(&key).await?;
        TenantRecord::from_hash(&key, &fields)
    }
}

/// `SADD index waba_id`: an owner index entry.
fn sadd(index: &str, waba_id: &WabaId) -> redis::Cmd {
    let mut cmd = redis::cmd("SADD");
    cmd.arg(index).arg(waba_id.as_str());
    cmd
}
