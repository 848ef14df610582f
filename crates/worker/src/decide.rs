//! The decision for one change, without I/O: what the worker must do with it.
//!
//! Every rule about reading Meta's `account_update` payloads lives here, so it is tested with
//! plain unit tests: which WABA an event is about (`waba_info.waba_id` when present, else
//! `entry.id`), what an uninstall without `waba_info` needs resolved, and which changes cannot
//! be attributed and go to the dead-letter queue with their reason. Never guess.
//!
//! Two more kinds of message reach the worker:
//!
//! - `application` webhooks `business_integration_install` / `business_integration_uninstall`
//!   (value `{business_manager_id, tp_config_id}`, `entry.id` = the app id, ordered by
//!   `entry.time`): an uninstall uninstalls every tenant that business owns, with the same
//!   ordering rules as `PARTNER_APP_UNINSTALLED`, and is remembered on the business so that a
//!   late, older install of one of its WABAs is not applied as current; an install is only
//!   recorded (it names no WABA, so there is no token to fetch: the WABA's own
//!   `PARTNER_APP_INSTALLED` does that). The partner's own portfolio is never a tenant.
//! - Embedded Signup session events (object `embedded_signup`), planned by
//!   [`crate::session::plan`].

use std::collections::HashSet;

use serde_json::Value;
use wa_envelope::ChangeMessage;
use wa_ids::{AppId, BusinessId, IdError, SolutionId, WabaId};
use wa_store::{Install, Uninstall};

/// What to do with one change.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// `PARTNER_APP_INSTALLED` with its `waba_info`.
    Install(Install),
    /// `PARTNER_APP_UNINSTALLED` naming its WABA.
    Uninstall(Uninstall),
    /// `PARTNER_APP_UNINSTALLED` without `waba_info`: `entry.id` is a WABA id or an owner
    /// business id, to be looked up in that order.
    UninstallByEntry {
        /// `entry.id`, read as a WABA id.
        entry_id: WabaId,
        /// `entry.id`, read as an owner business id.
        entry_owner: BusinessId,
        /// `entry.time`.
        event_time: i64,
    },
    /// Any other `account_update` event, known or not: recorded on the tenant.
    Account {
        /// The WABA it is about.
        waba_id: WabaId,
        /// `value.event`.
        event: String,
        /// The whole `value`.
        value: Value,
        /// `entry.time`.
        event_time: i64,
    },
    /// An Embedded Signup session event, forwarded from the customer's browser.
    Session(Box<crate::session::SessionPlan>),
    /// `application.business_integration_install`: recorded on the business.
    IntegrationInstall {
        /// `value.business_manager_id`.
        business_id: BusinessId,
        /// `entry.time`.
        event_time: i64,
    },
    /// `application.business_integration_uninstall`: every tenant the business owns is
    /// uninstalled and its token revoked.
    IntegrationUninstall {
        /// `value.business_manager_id`.
        business_id: BusinessId,
        /// `entry.time`.
        event_time: i64,
    },
    /// Cannot be applied safely: to the dead-letter queue with this reason.
    Reject(String),
}

/// The name a change's metrics and traces use: `value.event`, or for an `application`
/// webhook its field.
pub fn event_name(change: &ChangeMessage) -> Option<&str> {
    if change.object == "application" {
        return Some(change.field.as_str());
    }
    change.value.get("event").and_then(Value::as_str)
}

/// The id of type `T` in `value` (read at `at`), or why the change is rejected: a malformed
/// id is a malformed change.
fn id<T: TryFrom<String, Error = IdError>>(value: String, at: &str) -> Result<T, String> {
    T::try_from(value).map_err(|e| format!("{at}: {e}"))
}

/// [`id`] of an optional field.
fn optional_id<T: TryFrom<String, Error = IdError>>(
    value: Option<String>,
    at: &str,
) -> Result<Option<T>, String> {
    value.map(|v| id(v, at)).transpose()
}

/// The value of an `Ok`, or `return Plan::Reject(reason)` from the enclosing function.
macro_rules! or_reject {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(reason) => return Plan::Reject(reason),
        }
    };
}

fn plan_integration(change: &ChangeMessage, partner_business_ids: &HashSet<BusinessId>) -> Plan {
    let install = match change.field.as_str() {
        "business_integration_install" => true,
        "business_integration_uninstall" => false,
        other => {
            return Plan::Reject(format!(
                "application field `{other}` is not handled by this worker"
            ));
        }
    };
    let Some(event_time) = change.entry_time else {
        return Plan::Reject("entry.time missing: the event cannot be ordered".into());
    };
    let Some(business_id) = text(&change.value, "business_manager_id") else {
        return Plan::Reject(format!(
            "{} without value.business_manager_id",
            change.field
        ));
    };
    let business_id: BusinessId = or_reject!(id(business_id, "value.business_manager_id"));
    if partner_business_ids.contains(&business_id) {
        return Plan::Reject(format!(
            "{} for the partner's own portfolio {business_id}",
            change.field
        ));
    }
    if install {
        Plan::IntegrationInstall {
            business_id,
            event_time,
        }
    } else {
        Plan::IntegrationUninstall {
            business_id,
            event_time,
        }
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decides what `change` asks for. `partner_business_ids` are the partner's own portfolio
/// ids (`WA_PARTNER_BUSINESS_IDS`): never a tenant.
pub fn plan(change: &ChangeMessage, partner_business_ids: &HashSet<BusinessId>) -> Plan {
    if change.object == wa_envelope::session::OBJECT {
        return crate::session::plan(change);
    }
    if change.object == "application" {
        return plan_integration(change, partner_business_ids);
    }
    if change.field != "account_update" {
        return Plan::Reject(format!(
            "field `{}` is not handled by this worker",
            change.field
        ));
    }
    let Some(event_time) = change.entry_time else {
        return Plan::Reject("entry.time missing: the event cannot be ordered".into());
    };
    let value = &change.value;
    let Some(event) = text(value, "event") else {
        return Plan::Reject("value.event missing".into());
    };
    let waba_info = value.get("waba_info").filter(|w| w.is_object());
    let partner_entry = partner_business_ids.contains(change.entry_id.as_str());
    match event.as_str() {
        "PARTNER_APP_INSTALLED" => {
            let Some(info) = waba_info else {
                return Plan::Reject("PARTNER_APP_INSTALLED without waba_info".into());
            };
            let (Some(waba_id), Some(owner_business_id)) =
                (text(info, "waba_id"), text(info, "owner_business_id"))
            else {
                return Plan::Reject(
                    "PARTNER_APP_INSTALLED without waba_info.waba_id or owner_business_id".into(),
                );
            };
            let waba_id: WabaId = or_reject!(id(waba_id, "waba_info.waba_id"));
            let owner_business_id: BusinessId =
                or_reject!(id(owner_business_id, "waba_info.owner_business_id"));
            if partner_business_ids.contains(&owner_business_id) {
                return Plan::Reject(format!(
                    "install owned by the partner's own portfolio {owner_business_id}"
                ));
            }
            let partners: Result<Vec<BusinessId>, String> = info
                .get("solution_partner_business_ids")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .map(|v| id(v, "waba_info.solution_partner_business_ids[]"))
                        .collect()
                })
                .unwrap_or(Ok(Vec::new()));
            Plan::Install(Install {
                waba_id,
                owner_business_id,
                partner_app_id: or_reject!(optional_id::<AppId>(
                    text(info, "partner_app_id"),
                    "waba_info.partner_app_id"
                )),
                solution_id: or_reject!(optional_id::<SolutionId>(
                    text(info, "solution_id"),
                    "waba_info.solution_id"
                )),
                solution_partner_business_ids: or_reject!(partners),
                event_time,
            })
        }
        "PARTNER_APP_UNINSTALLED" => match waba_info.and_then(|info| text(info, "waba_id")) {
            Some(waba_id) => Plan::Uninstall(Uninstall {
                waba_id: or_reject!(id(waba_id, "waba_info.waba_id")),
                owner_business_id: or_reject!(optional_id(
                    waba_info.and_then(|info| text(info, "owner_business_id")),
                    "waba_info.owner_business_id"
                )),
                event_time,
            }),
            None if partner_entry => Plan::Reject(format!(
                "uninstall without waba_info for entry.id {} (the partner's own portfolio)",
                change.entry_id
            )),
            None => Plan::UninstallByEntry {
                entry_id: or_reject!(id(change.entry_id.clone(), "entry.id")),
                entry_owner: or_reject!(id(change.entry_id.clone(), "entry.id")),
                event_time,
            },
        },
        _ => match waba_info.and_then(|info| text(info, "waba_id")) {
            Some(waba_id) => Plan::Account {
                waba_id: or_reject!(id(waba_id, "waba_info.waba_id")),
                event,
                value: value.clone(),
                event_time,
            },
            None if partner_entry => Plan::Reject(format!(
                "{event} for entry.id {} (the partner's own portfolio) without waba_info",
                change.entry_id
            )),
            None => Plan::Account {
                waba_id: or_reject!(id(change.entry_id.clone(), "entry.id")),
                event,
                value: value.clone(),
                event_time,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(entry_id: &str, time: Option<i64>, value: Value) -> ChangeMessage {
        ChangeMessage {
            id: "ab".repeat(32).parse().unwrap(),
            object: "whatsapp_business_account".into(),
            entry_id: entry_id.into(),
            entry_time: time,
            field: "account_update".into(),
            value,
            received_at: 0,
        }
    }

    fn partners() -> HashSet<BusinessId> {
        HashSet::from(["2949482758682047".parse().unwrap()])
    }

    #[test]
    fn install_reads_waba_info_not_entry_id() {
        let v = json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {
            "waba_id": "495709166956424", "owner_business_id": "942647313864044",
            "partner_app_id": "1061231232323117", "solution_id": "580381314521123",
            "solution_partner_business_ids": ["2949482758682047", "3112233445566778"]}});
        let Plan::Install(install) = plan(&change("2949482758682047", Some(10), v), &partners())
        else {
            panic!("not an install")
        };
        assert_eq!(install.waba_id, "495709166956424");
        assert_eq!(install.owner_business_id, "942647313864044");
        assert_eq!(install.solution_id.unwrap(), "580381314521123");
        assert_eq!(install.solution_partner_business_ids.len(), 2);
        assert_eq!(install.event_time, 10);
    }

    #[test]
    fn install_without_identity_is_rejected() {
        for v in [
            json!({"event": "PARTNER_APP_INSTALLED"}),
            json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1"}}),
            json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"owner_business_id": "1"}}),
        ] {
            assert!(matches!(
                plan(&change("9", Some(1), v), &partners()),
                Plan::Reject(_)
            ));
        }
    }

    #[test]
    fn uninstall_with_waba_info_names_its_waba() {
        let v = json!({"event": "PARTNER_APP_UNINSTALLED", "waba_info": {"waba_id": "5", "owner_business_id": "6"}});
        assert_eq!(
            plan(&change("2949482758682047", Some(20), v), &partners()),
            Plan::Uninstall(Uninstall {
                waba_id: "5".parse().unwrap(),
                owner_business_id: Some("6".parse().unwrap()),
                event_time: 20
            })
        );
    }

    #[test]
    fn bare_uninstall_is_resolved_by_entry_id_unless_it_is_the_partner() {
        let v = json!({"event": "PARTNER_APP_UNINSTALLED"});
        assert_eq!(
            plan(&change("495709166956424", Some(30), v.clone()), &partners()),
            Plan::UninstallByEntry {
                entry_id: "495709166956424".parse().unwrap(),
                entry_owner: "495709166956424".parse().unwrap(),
                event_time: 30
            }
        );
        let Plan::Reject(reason) = plan(&change("2949482758682047", Some(30), v), &partners())
        else {
            panic!("the partner's portfolio is never a tenant")
        };
        assert!(reason.contains("partner"), "{reason}");
    }

    #[test]
    fn other_events_are_kept_on_the_tenant_named_by_entry_id() {
        for event in [
            "DISABLED_UPDATE",
            "ACCOUNT_RESTRICTION",
            "SOMETHING_NEW_FROM_META",
        ] {
            let v = json!({"event": event, "x": 1});
            assert_eq!(
                plan(&change("77", Some(40), v.clone()), &partners()),
                Plan::Account {
                    waba_id: "77".parse().unwrap(),
                    event: event.into(),
                    value: v,
                    event_time: 40
                }
            );
        }
    }

    fn integration(field: &str, time: Option<i64>, value: Value) -> ChangeMessage {
        ChangeMessage {
            id: "ab".repeat(32).parse().unwrap(),
            object: "application".into(),
            entry_id: "1061231232323117".parse().unwrap(),
            entry_time: time,
            field: field.into(),
            value,
            received_at: 0,
        }
    }

    #[test]
    fn integration_webhooks_name_the_business() {
        let v = json!({"business_manager_id": "942647313864044", "tp_config_id": "c"});
        assert_eq!(
            plan(
                &integration("business_integration_uninstall", Some(50), v.clone()),
                &partners()
            ),
            Plan::IntegrationUninstall {
                business_id: "942647313864044".parse().unwrap(),
                event_time: 50
            }
        );
        let change = integration("business_integration_install", Some(40), v.clone());
        assert_eq!(
            plan(&change, &partners()),
            Plan::IntegrationInstall {
                business_id: "942647313864044".parse().unwrap(),
                event_time: 40
            }
        );
        assert_eq!(event_name(&change), Some("business_integration_install"));
    }

    #[test]
    fn integration_webhooks_that_cannot_be_applied_are_rejected() {
        let v = json!({"business_manager_id": "942647313864044"});
        for (change, needle) in [
            (
                integration("business_integration_uninstall", None, v.clone()),
                "entry.time",
            ),
            (
                integration("business_integration_uninstall", Some(1), json!({})),
                "business_manager_id",
            ),
            (
                integration(
                    "business_integration_uninstall",
                    Some(1),
                    json!({"business_manager_id": "2949482758682047"}),
                ),
                "partner",
            ),
            (
                integration("business_integration_update", Some(1), v.clone()),
                "not handled",
            ),
        ] {
            let Plan::Reject(reason) = plan(&change, &partners()) else {
                panic!("{change:?} must be rejected")
            };
            assert!(reason.contains(needle), "{reason}");
        }
    }

    #[test]
    fn what_cannot_be_ordered_or_named_is_rejected() {
        let install = json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1", "owner_business_id": "2"}});
        assert!(matches!(
            plan(&change("9", None, install), &partners()),
            Plan::Reject(_)
        ));
        assert!(matches!(
            plan(&change("9", Some(1), json!({})), &partners()),
            Plan::Reject(_)
        ));
        let mut other = change("9", Some(1), json!({"event": "X"}));
        other.field = "messages".into();
        assert!(matches!(plan(&other, &partners()), Plan::Reject(_)));
        let owned_by_partner = json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1", "owner_business_id": "2949482758682047"}});
        assert!(matches!(
            plan(&change("9", Some(1), owned_by_partner), &partners()),
            Plan::Reject(_)
        ));
    }

    #[test]
    fn a_malformed_id_is_a_malformed_change() {
        for (v, entry, needle) in [
            (
                json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "waba-1", "owner_business_id": "2"}}),
                "9",
                "waba_info.waba_id",
            ),
            (
                json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1", "owner_business_id": "owner-3"}}),
                "9",
                "waba_info.owner_business_id",
            ),
            (
                json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1", "owner_business_id": "2", "solution_partner_business_ids": ["p"]}}),
                "9",
                "solution_partner_business_ids",
            ),
            (
                json!({"event": "PARTNER_APP_UNINSTALLED"}),
                "w1",
                "entry.id",
            ),
            (json!({"event": "DISABLED_UPDATE"}), "1{2}", "entry.id"),
        ] {
            let Plan::Reject(reason) = plan(&change(entry, Some(1), v.clone()), &partners()) else {
                panic!("{v} must be rejected")
            };
            assert!(reason.contains(needle), "{reason}");
        }
        let v = json!({"business_manager_id": "bm-1"});
        let Plan::Reject(reason) = plan(
            &integration("business_integration_install", Some(1), v),
            &partners(),
        ) else {
            panic!("must be rejected")
        };
        assert!(reason.contains("business_manager_id"), "{reason}");
    }
}
