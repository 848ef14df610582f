//! Account events: which `account` attribute each one sets, and the per-tenant event log.
//!
//! | event | sets |
//! |---|---|
//! | `PARTNER_ADDED` / `PARTNER_REMOVED` | `partner_removed` = false / true |
//! | `ACCOUNT_DELETED` | `deleted` = true |
//! | `ACCOUNT_OFFBOARDED` / `ACCOUNT_RECONNECTED` | `offboarded` = true / false |
//! | `DISABLED_UPDATE` | `ban_state` = `ban_info.waba_ban_state` |
//! | `ACCOUNT_RESTRICTION` | `restrictions` = `restriction_info[]` |
//! | `ACCOUNT_VIOLATION` | `violation` = `violation_info.violation_type` |
//! | anything else (or a known event without its field) | nothing: logged only |
//!
//! Every account event, known or unknown, is also kept in the tenant's event log
//! (`{prefix}events:{<waba_id>}`, the newest [`EVENT_LOG_LEN`] by event time), so nothing
//! Meta says is dropped; read it with [`Store::account_events`].

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wa_ids::WabaId;

use crate::{Applied, Result, Store, StoreError, durable::Eval};

static ACCOUNT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/account.lua")));

/// How many account events the log keeps per tenant (the newest by event time).
pub const EVENT_LOG_LEN: usize = 100;

/// One entry of a tenant's account event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// `value.event`, e.g. `PARTNER_ADDED` or one this code does not know.
    pub event: String,
    /// `entry.time`, unix seconds.
    pub time: i64,
    /// The change's whole `value`, as received.
    pub value: Value,
}

/// The attributes (hash field, JSON value text) `event` sets, read from the change's `value`.
#[must_use]
pub(crate) fn attribute_updates(event: &str, value: &Value) -> Vec<(&'static str, String)> {
    let flag = |field, on: bool| vec![(field, on.to_string())];
    let text = |field, v: Option<&Value>| match v {
        Some(Value::String(s)) => vec![(field, Value::String(s.clone()).to_string())],
        _ => Vec::new(),
    };
    match event {
        "PARTNER_ADDED" => flag("partner_removed", false),
        "PARTNER_REMOVED" => flag("partner_removed", true),
        "ACCOUNT_DELETED" => flag("deleted", true),
        "ACCOUNT_OFFBOARDED" => flag("offboarded", true),
        "ACCOUNT_RECONNECTED" => flag("offboarded", false),
        "DISABLED_UPDATE" => text("ban_state", value.pointer("/ban_info/waba_ban_state")),
        "ACCOUNT_VIOLATION" => text("violation", value.pointer("/violation_info/violation_type")),
        "ACCOUNT_RESTRICTION" => match value.get("restriction_info") {
            Some(list @ Value::Array(_)) => vec![("restrictions", list.to_string())],
            // One restriction sent as an object instead of a list of one.
            Some(one @ Value::Object(_)) => {
                vec![("restrictions", Value::Array(vec![one.clone()]).to_string())]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

impl Store {
    /// Applies an account event (`value.event` = `event`, `value` = the change's whole
    /// `value`) at `event_time` (`entry.time`): sets the `account` attributes it carries
    /// (see the table in [`crate::account`]), each only if no newer event already set it,
    /// and logs it. Unknown events are logged and count as applied.
    ///
    /// For a WABA with no record this creates one: status `uninstalled`, `installed_at` and
    /// `uninstalled_at` `null`, token status `null`. It does not take part in install
    /// ordering, so the WABA's install is still applied when it arrives, even if older.
    ///
    /// [`Applied::stale`] is `true` only when the event sets attributes and every one of
    /// them already holds a newer value. Install/uninstall fields of the result describe
    /// the tenant as it stands.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`].
    #[tracing::instrument(name = "redis apply_account_event", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn apply_account_event(
        &self,
        waba_id: &WabaId,
        event: &str,
        value: &Value,
        event_time: i64,
    ) -> Result<Applied> {
        let key = self.keys.tenant(waba_id);
        let entry = serde_json::to_string(&AccountEvent {
            event: event.to_owned(),
            time: event_time,
            value: value.clone(),
        })
        .map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
        let mut conn = self.conn();
        let mut call = Eval::new(&ACCOUNT);
        call.key(&key);
        call.key(self.keys.events(waba_id))
            .arg(waba_id.as_str())
            .arg(event_time)
            .arg(entry)
            .arg(EVENT_LOG_LEN);
        for (field, json) in attribute_updates(event, value) {
            call.arg(field).arg(json);
        }
        let (set, offered, prev, status, token, subscribed): (
            i64,
            i64,
            String,
            String,
            String,
            String,
        ) = conn.eval(&call).await?;
        let applied = i64::from(set > 0 || offered == 0);
        let out = Applied::from_reply(&key, applied, &prev, &status, &token, &subscribed, 0)?;
        tracing::debug!(
            %waba_id,
            event,
            event_time,
            stale = out.stale,
            "account event applied"
        );
        Ok(out)
    }

    /// The tenant's account event log, newest first (at most [`EVENT_LOG_LEN`] entries).
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`]; [`StoreError::Corrupt`] for an entry that is not an event.
    pub async fn account_events(&self, waba_id: &WabaId) -> Result<Vec<AccountEvent>> {
        let key = self.keys.events(waba_id);
        let raw: Vec<String> = self.conn().zrevrange(&key, 0, -1).await?;
        raw.iter()
            .map(|s| serde_json::from_str(s).map_err(|e| StoreError::corrupt(&key, e.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flags() {
        assert_eq!(
            attribute_updates("PARTNER_REMOVED", &json!({})),
            [("partner_removed", "true".to_owned())]
        );
        assert_eq!(
            attribute_updates("PARTNER_ADDED", &json!({})),
            [("partner_removed", "false".to_owned())]
        );
        assert_eq!(
            attribute_updates("ACCOUNT_RECONNECTED", &json!({})),
            [("offboarded", "false".to_owned())]
        );
        assert_eq!(
            attribute_updates("ACCOUNT_DELETED", &json!({})),
            [("deleted", "true".to_owned())]
        );
    }

    #[test]
    fn values_are_json_text() {
        let ban = json!({"event": "DISABLED_UPDATE",
            "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "2025-01-01"}});
        assert_eq!(
            attribute_updates("DISABLED_UPDATE", &ban),
            [("ban_state", r#""DISABLE""#.to_owned())]
        );
        let v = json!({"violation_info": {"violation_type": "SCAM"}});
        assert_eq!(
            attribute_updates("ACCOUNT_VIOLATION", &v),
            [("violation", r#""SCAM""#.to_owned())]
        );
        let r = json!({"restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]});
        assert_eq!(
            attribute_updates("ACCOUNT_RESTRICTION", &r),
            [(
                "restrictions",
                r#"[{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]"#.to_owned()
            )]
        );
        let lifted = json!({"restriction_info": []});
        assert_eq!(
            attribute_updates("ACCOUNT_RESTRICTION", &lifted),
            [("restrictions", "[]".to_owned())]
        );
    }

    #[test]
    fn unknown_or_incomplete_events_set_nothing() {
        assert!(attribute_updates("MM_LITE_TERMS_SIGNED", &json!({})).is_empty());
        assert!(attribute_updates("SOMETHING_NEW", &json!({"x": 1})).is_empty());
        assert!(attribute_updates("DISABLED_UPDATE", &json!({"ban_info": {}})).is_empty());
        assert!(attribute_updates("ACCOUNT_VIOLATION", &json!({})).is_empty());
    }
}
