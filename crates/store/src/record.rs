//! The tenant record: the `tenants get` JSON of docs/REFERENCE.md ("Tenant record"), and how
//! it is laid out in a Redis hash.
//!
//! One hash per tenant, `{prefix}tenant:{<waba_id>}`. Scalars are stored as plain strings,
//! list-valued fields as JSON text written by Rust (so Lua never re-encodes them: `cjson`
//! would turn `[]` into `{}`), and an absent field means `null` / empty / `false`. Besides the
//! fields below, the hash holds bookkeeping that is not part of the JSON: `status_time` (the
//! `event_time` of the newest install/uninstall applied), `install_seq` (the install
//! generation: bumped by every install that is not a redelivery, so tenant checks tell a
//! reinstall at the same second apart) and `<attr>_t` (the `event_time` of the newest
//! account event applied to each account attribute).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wa_ids::{AppId, BusinessId, IdError, PhoneNumberId, SolutionId, WabaId};

use crate::{Result, StoreError};

/// Whether the partner app is installed on the WABA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The newest install/uninstall applied was `PARTNER_APP_INSTALLED`.
    Installed,
    /// The newest install/uninstall applied was `PARTNER_APP_UNINSTALLED`, or none was seen
    /// yet (a record created by an account event: `installed_at` and `uninstalled_at` are
    /// both `null` then).
    Uninstalled,
    /// Only an Embedded Signup session event (`FINISH…`, from the customer's browser) has
    /// named the WABA so far: its phone numbers are recorded, but it is not installed until
    /// Meta's signed `PARTNER_APP_INSTALLED` webhook says so (no token is fetched before).
    Pending,
}

impl Status {
    /// The wire name (`installed` / `uninstalled` / `pending`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "installed",
            Self::Uninstalled => "uninstalled",
            Self::Pending => "pending",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "installed" => Some(Self::Installed),
            "uninstalled" => Some(Self::Uninstalled),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }
}

/// Where the tenant's business token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Installed; the token still has to be fetched.
    Pending,
    /// A token is stored (encrypted) and usable.
    Active,
    /// Fetching failed permanently; `token.error` says why.
    Failed,
    /// The app was uninstalled; any stored token was destroyed.
    Revoked,
    /// A tenant check found that Graph no longer accepts the token (`debug_token`, or a
    /// permanent `190` on use); the stored token was destroyed.
    Invalid,
}

impl TokenStatus {
    /// Every status, in wire order (for metrics exported at 0).
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Active,
        Self::Failed,
        Self::Invalid,
        Self::Revoked,
    ];

    /// The wire name (`pending`, `active`, `failed`, `invalid`, `revoked`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::Revoked => "revoked",
            Self::Invalid => "invalid",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "failed" => Some(Self::Failed),
            "revoked" => Some(Self::Revoked),
            "invalid" => Some(Self::Invalid),
            _ => None,
        }
    }
}

/// The `token` section of a tenant record. It never contains the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenInfo {
    /// `null` only while the tenant has never been seen installed (its record was created by
    /// an uninstall or an account event).
    pub status: Option<TokenStatus>,
    /// When the current (or last, if revoked) token was fetched, unix seconds.
    pub fetched_at: Option<i64>,
    /// When the token expires as `debug_token` said, unix seconds; `0` when it never does,
    /// `null` while unknown.
    pub expires_at: Option<i64>,
    /// When Graph was last asked about the token (at its fetch, or by a tenant check).
    pub checked_at: Option<i64>,
    /// Why fetching failed, when `status` is `failed`.
    pub error: Option<String>,
}

/// What a tenant check found wrong and could not fix (`attention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    /// Graph no longer accepts the business token.
    TokenInvalid,
    /// The token expires within `WA_TOKEN_REFRESH_BEFORE` and fetching a new one failed.
    TokenExpiring,
    /// Our app is not subscribed to the WABA and subscribing again failed.
    NotSubscribed,
}

impl Attention {
    /// Every value, in wire order (for metrics exported at 0).
    pub const ALL: [Self; 3] = [Self::TokenInvalid, Self::TokenExpiring, Self::NotSubscribed];

    /// The wire name (`token_invalid`, `token_expiring`, `not_subscribed`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpiring => "token_expiring",
            Self::NotSubscribed => "not_subscribed",
        }
    }

    /// The value named `s`, if any.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The `account` section: the latest of each account attribute Meta reported.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountState {
    /// `ban_info.waba_ban_state` of the newest `DISABLED_UPDATE` (e.g. `DISABLE`, `REINSTATE`).
    pub ban_state: Option<String>,
    /// `restriction_info[]` of the newest `ACCOUNT_RESTRICTION`, as Meta sent it.
    pub restrictions: Vec<Value>,
    /// `violation_info.violation_type` of the newest `ACCOUNT_VIOLATION`.
    pub violation: Option<String>,
    /// `PARTNER_REMOVED` is newer than any `PARTNER_ADDED`.
    pub partner_removed: bool,
    /// `ACCOUNT_DELETED` was received.
    pub deleted: bool,
    /// `ACCOUNT_OFFBOARDED` is newer than any `ACCOUNT_RECONNECTED`.
    pub offboarded: bool,
}

/// One tenant, exactly as the JSON of docs/REFERENCE.md, "Tenant record" (`tenants get`,
/// `tenants list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// The customer's WhatsApp Business Account id (the tenant's identity).
    pub waba_id: WabaId,
    /// The customer's business portfolio id; `null` while only an uninstall without
    /// `waba_info` or an account event has been seen.
    pub owner_business_id: Option<BusinessId>,
    /// Installed or not (see [`Status`]).
    pub status: Status,
    /// The partner app that was installed; `null` until an install is applied.
    pub partner_app_id: Option<AppId>,
    /// The Multi-Partner Solution id, when the install came through one.
    pub solution_id: Option<SolutionId>,
    /// The solution's partner portfolio ids.
    pub solution_partner_business_ids: Vec<BusinessId>,
    /// The WABA's phone number ids: Graph's list once a token is held (see
    /// `phone_numbers_verified`), before that the ids Embedded Signup finish events claimed.
    pub phone_number_ids: Vec<PhoneNumberId>,
    /// `phone_number_ids` is Graph's list for the WABA (read with the business token), not
    /// claims from the browser.
    pub phone_numbers_verified: bool,
    /// `event_time` of the install currently in effect.
    pub installed_at: Option<i64>,
    /// `event_time` of the uninstall currently in effect; cleared by a newer install.
    pub uninstalled_at: Option<i64>,
    /// The newest `event_time` applied by any event (install, uninstall, account event).
    pub last_event_time: i64,
    /// The business token's state.
    pub token: TokenInfo,
    /// Whether the app was subscribed to the WABA's webhooks since the last install (or, once
    /// a tenant check ran, whether Graph listed it then).
    pub subscribed: bool,
    /// What the last tenant check found wrong and could not fix; empty when all is well
    /// (and when read from JSON written before checks existed).
    #[serde(default)]
    pub attention: Vec<Attention>,
    /// The account attributes Meta reported.
    pub account: AccountState,
}

impl TenantRecord {
    /// Reads a record from the fields of its hash (`HGETALL`); `None` for an empty hash.
    pub(crate) fn from_hash(key: &str, h: &HashMap<String, String>) -> Result<Option<Self>> {
        if h.is_empty() {
            return Ok(None);
        }
        let f = Fields { key, h };
        let status = match f.str("status") {
            None => Status::Uninstalled,
            Some(s) => Status::parse(s).ok_or_else(|| f.bad("status", s))?,
        };
        let token_status = match f.str("token_status") {
            None => None,
            Some(s) => Some(TokenStatus::parse(s).ok_or_else(|| f.bad("token_status", s))?),
        };
        Ok(Some(Self {
            waba_id: f
                .id("waba_id")?
                .ok_or_else(|| StoreError::corrupt(key, "no waba_id field"))?,
            owner_business_id: f.id("owner_business_id")?,
            status,
            partner_app_id: f.id("partner_app_id")?,
            solution_id: f.id("solution_id")?,
            solution_partner_business_ids: f.json("solution_partner_business_ids")?,
            phone_number_ids: f.json("phone_number_ids")?,
            phone_numbers_verified: f.flag("phone_numbers_verified")?,
            installed_at: f.int("installed_at")?,
            uninstalled_at: f.int("uninstalled_at")?,
            last_event_time: f.int("last_event_time")?.unwrap_or(0),
            token: TokenInfo {
                status: token_status,
                fetched_at: f.int("token_fetched_at")?,
                expires_at: f.int("token_expires_at")?,
                checked_at: f.int("token_checked_at")?,
                error: f.string("token_error"),
            },
            subscribed: f.flag("subscribed")?,
            attention: f.json("attention")?,
            account: AccountState {
                ban_state: f.json("ban_state")?,
                restrictions: f.json("restrictions")?,
                violation: f.json("violation")?,
                partner_removed: f.json::<Option<bool>>("partner_removed")?.unwrap_or(false),
                deleted: f.json::<Option<bool>>("deleted")?.unwrap_or(false),
                offboarded: f.json::<Option<bool>>("offboarded")?.unwrap_or(false),
            },
        }))
    }
}

struct Fields<'a> {
    key: &'a str,
    h: &'a HashMap<String, String>,
}

impl Fields<'_> {
    fn str(&self, name: &str) -> Option<&str> {
        self.h
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.str(name).map(str::to_owned)
    }

    fn bad(&self, name: &str, value: &str) -> StoreError {
        StoreError::corrupt(
            self.key,
            format!("field {name} has unexpected value {value:?}"),
        )
    }

    /// An id field; absent means `None`, a value that breaks the id's rule is corrupt.
    fn id<T: TryFrom<String, Error = IdError>>(&self, name: &str) -> Result<Option<T>> {
        self.string(name)
            .map(|s| T::try_from(s).map_err(|e| StoreError::corrupt(self.key, e.to_string())))
            .transpose()
    }

    fn int(&self, name: &str) -> Result<Option<i64>> {
        self.str(name)
            .map(|s| s.parse().map_err(|_| self.bad(name, s)))
            .transpose()
    }

    fn flag(&self, name: &str) -> Result<bool> {
        match self.str(name) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(s) => Err(self.bad(name, s)),
        }
    }

    /// A JSON-encoded field; absent means the type's default (`[]`, `null`).
    fn json<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        match self.str(name) {
            None => Ok(T::default()),
            Some(s) => serde_json::from_str(s).map_err(|e| {
                StoreError::corrupt(
                    self.key,
                    format!("field {name} is not the JSON expected: {e}"),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn serializes_to_exactly_the_spec_shape() {
        let spec: Value = serde_json::from_str(
            r#"{"waba_id": "1", "owner_business_id": "2", "status": "installed",
             "partner_app_id": "3", "solution_id": null, "solution_partner_business_ids": ["4"],
             "phone_number_ids": [], "phone_numbers_verified": false, "installed_at": 1730000000, "uninstalled_at": null,
             "last_event_time": 1730000000,
             "token": {"status": "active", "fetched_at": 1730000001, "expires_at": 1735184001,
                       "checked_at": 1730000002, "error": null},
             "subscribed": true, "attention": ["not_subscribed"],
             "account": {"ban_state": null, "restrictions": [], "violation": null,
                         "partner_removed": false, "deleted": false, "offboarded": false}}"#,
        )
        .unwrap();
        let record: TenantRecord = serde_json::from_value(spec.clone()).unwrap();
        assert_eq!(serde_json::to_value(&record).unwrap(), spec);
    }

    #[test]
    fn reads_a_hash_with_defaults_for_absent_fields() {
        let r = TenantRecord::from_hash(
            "k",
            &hash(&[
                ("waba_id", "9"),
                ("status", "uninstalled"),
                ("last_event_time", "5"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.waba_id, "9");
        assert_eq!(r.status, Status::Uninstalled);
        assert_eq!(r.token, TokenInfo::default());
        assert!(r.solution_partner_business_ids.is_empty());
        assert_eq!(r.account, AccountState::default());
        assert_eq!(r.last_event_time, 5);
        assert!(
            TenantRecord::from_hash("k", &HashMap::new())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reads_account_attributes_and_lists() {
        let r = TenantRecord::from_hash(
            "k",
            &hash(&[
                ("waba_id", "9"),
                ("solution_partner_business_ids", r#"["1","2"]"#),
                ("ban_state", r#""DISABLE""#),
                (
                    "restrictions",
                    r#"[{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]"#,
                ),
                ("partner_removed", "true"),
                ("subscribed", "1"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.solution_partner_business_ids, ["1", "2"]);
        assert_eq!(r.account.ban_state.as_deref(), Some("DISABLE"));
        assert_eq!(r.account.restrictions.len(), 1);
        assert!(r.account.partner_removed);
        assert!(r.subscribed);
    }

    #[test]
    fn garbage_is_reported_as_corrupt_with_the_key() {
        for bad in [
            &[("waba_id", "9"), ("status", "maybe")][..],
            &[("waba_id", "9"), ("installed_at", "soon")][..],
            &[("waba_id", "9"), ("phone_number_ids", "{}")][..],
            &[("waba_id", "9"), ("phone_number_ids", r#"["x"]"#)][..],
            &[("waba_id", "w9")][..],
            &[("status", "installed")][..],
        ] {
            let err = TenantRecord::from_hash("wa:tenant:{9}", &hash(bad)).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("wa:tenant:{9}"), "{err}");
        }
    }
}
