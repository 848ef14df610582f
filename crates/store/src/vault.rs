//! [`TokenVault`]: the only way to business tokens. A [`Store`] and the token key together.
//!
//! What it owns: sealing a token into `{prefix}token:{<waba_id>}` (tied, in one atomic step,
//! to the install that asked for it), opening it again, and rekeying every stored token
//! ([`TokenVault::rekey`]). Everything else about a tenant — including its
//! token *status* and destroying a token on uninstall — is plain state on [`Store`], which
//! needs no key. It never logs a token.

use std::{fmt, sync::LazyLock};

use redis::{AsyncCommands, Script};
use secrecy::SecretString;
use wa_ids::WabaId;

use crate::{CheckGuard, Result, Store, TokenKey, durable::Eval};

static STORE_TOKEN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/store_token.lua")));

/// A token's expiry as Graph's `debug_token` told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry {
    /// Unix seconds; `0` when the token never expires.
    pub expires_at: i64,
    /// When Graph was asked, unix seconds.
    pub checked_at: i64,
}

/// Business tokens, sealed and opened with `WA_TOKEN_KEY`. Cheap to clone; made by
/// [`Store::with_token_key`] or [`TokenVault::new`].
#[derive(Clone)]
pub struct TokenVault {
    pub(crate) store: Store,
    pub(crate) key: TokenKey,
}

impl fmt::Debug for TokenVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVault")
            .field("prefix", &self.store.keys.prefix)
            .field("token_key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TokenVault {
    /// The tokens of `store`, under `key`.
    #[must_use]
    pub fn new(store: Store, key: TokenKey) -> Self {
        tracing::debug!(prefix = %store.prefix(), token_key_id = %key.id(), "token vault opened");
        Self { store, key }
    }

    /// The store whose tokens these are (for state: records, claims, ...).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Encrypts and stores the tenant's business token (token status `active`,
    /// `fetched_at`), only if the install that asked for it is still the one in effect: the
    /// tenant is installed and its `status_time` is `install_time` (the
    /// [`crate::Install::event_time`] whose fetch this is).
    ///
    /// Returns `false`, storing nothing, otherwise. Checking the status alone is not enough:
    /// a slow fetch for an install at t=10 can return after an uninstall (t=20) and a
    /// re-install (t=30) that stored its own token; the t=10 result (possibly already
    /// invalid) must not overwrite it.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`]; [`crate::StoreError::Crypto`] (practically never).
    pub async fn store_token(
        &self,
        waba_id: &WabaId,
        token: &SecretString,
        fetched_at: i64,
        install_time: i64,
    ) -> Result<bool> {
        self.store_checked_token(waba_id, token, fetched_at, install_time, None)
            .await
    }

    /// As [`TokenVault::store_token`], with the token's expiry as `debug_token` told it
    /// (`None` when Graph could not be asked: `token.expires_at` is then unknown). A token
    /// stored before for the same install (one about to expire) is overwritten, i.e.
    /// destroyed, in the same step.
    ///
    /// # Errors
    ///
    /// As [`TokenVault::store_token`].
    #[tracing::instrument(name = "redis store_token", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn store_checked_token(
        &self,
        waba_id: &WabaId,
        token: &SecretString,
        fetched_at: i64,
        install_time: i64,
        expiry: Option<TokenExpiry>,
    ) -> Result<bool> {
        self.store_guarded(waba_id, token, fetched_at, install_time, expiry, None)
            .await
    }

    /// As [`TokenVault::store_checked_token`] for a check's refresh: only while `guard` holds
    /// (the install generation the check read, its lease still held), so a refresh never
    /// replaces the token of a newer install at the same second.
    ///
    /// # Errors
    ///
    /// As [`TokenVault::store_token`].
    pub async fn store_refreshed_token(
        &self,
        waba_id: &WabaId,
        token: &SecretString,
        fetched_at: i64,
        install_time: i64,
        expiry: Option<TokenExpiry>,
        guard: &CheckGuard,
    ) -> Result<bool> {
        self.store_guarded(
            waba_id,
            token,
            fetched_at,
            install_time,
            expiry,
            Some(guard),
        )
        .await
    }

    async fn store_guarded(
        &self,
        waba_id: &WabaId,
        token: &SecretString,
        fetched_at: i64,
        install_time: i64,
        expiry: Option<TokenExpiry>,
        guard: Option<&CheckGuard>,
    ) -> Result<bool> {
        let keys = &self.store.keys;
        let sealed = self.key.seal(waba_id.as_str(), token)?;
        let (expires_at, checked_at) = expiry.map_or((String::new(), String::new()), |e| {
            (e.expires_at.to_string(), e.checked_at.to_string())
        });
        let (seq, lease) = crate::check::guard_args(guard);
        let tenant = keys.tenant(waba_id);
        let mut conn = self.store.conn();
        let stored: i64 = conn
            .eval(
                Eval::new(&STORE_TOKEN)
                    .key(&tenant)
                    .key(keys.token(waba_id))
                    .key(keys.check(waba_id))
                    .arg(sealed)
                    .arg(fetched_at)
                    .arg(install_time)
                    .arg(expires_at)
                    .arg(checked_at)
                    .arg(seq)
                    .arg(lease),
            )
            .await?;
        Ok(stored == 1)
    }

    /// The decrypted business token, or `None` if none is stored (never fetched, failed, or
    /// destroyed by an uninstall).
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`]; [`crate::StoreError::Crypto`] if it cannot be decrypted
    /// (another `WA_TOKEN_KEY`, or a ciphertext that does not belong to this WABA).
    #[tracing::instrument(name = "redis token", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn token(&self, waba_id: &WabaId) -> Result<Option<SecretString>> {
        let stored: Option<String> = self
            .store
            .conn()
            .get(self.store.keys.token(waba_id))
            .await?;
        stored
            .map(|s| self.key.open(waba_id.as_str(), &s))
            .transpose()
    }
}
