//! A tenant's phone numbers as Graph lists them: [`Store::store_phone_numbers`].
//!
//! Claims from the browser (Embedded Signup finish events) are merged by
//! [`Store::merge_signup`] while the list is unverified; once Graph's list is recorded here
//! (`phone_numbers_verified: true`) claims never change it. Tied, like the token, to the
//! install in effect. Never touches tokens or install ordering.

use std::sync::LazyLock;

use redis::Script;
use wa_ids::{PhoneNumberId, WabaId};

use crate::{Result, Store, StoreError, durable::Eval};

static STORE_PHONE_NUMBERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/store_phone_numbers.lua")));

/// Most phone number ids Graph's list may hold in one record; more is refused as corrupt.
pub const MAX_VERIFIED_PHONE_NUMBERS: usize = 1000;

impl Store {
    /// Replaces the tenant's phone numbers by Graph's list and marks them verified, only
    /// while the install that read them (`install_time`, its [`crate::Install::event_time`])
    /// is still the one in effect. Returns `false`, recording nothing, otherwise.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::InvalidInput`] for more than
    /// [`MAX_VERIFIED_PHONE_NUMBERS`] ids.
    #[tracing::instrument(name = "redis store_phone_numbers", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn store_phone_numbers(
        &self,
        waba_id: &WabaId,
        ids: &[PhoneNumberId],
        install_time: i64,
    ) -> Result<bool> {
        let key = self.keys.tenant(waba_id);
        if ids.len() > MAX_VERIFIED_PHONE_NUMBERS {
            return Err(StoreError::InvalidInput {
                what: "phone_number_ids",
                value: ids.len().to_string(),
                reason: "more ids than a record keeps",
            });
        }
        let json =
            serde_json::to_string(ids).map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
        let mut conn = self.conn();
        let stored: i64 = conn
            .eval(
                Eval::new(&STORE_PHONE_NUMBERS)
                    .key(&key)
                    .arg(json)
                    .arg(install_time),
            )
            .await?;
        Ok(stored == 1)
    }
}
