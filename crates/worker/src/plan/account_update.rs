//! The plan for an `account_update` webhook change (object `whatsapp_business_account`).
//!
//! Which WABA an event is about (`waba_info.waba_id` when present, else `entry.id`), what an
//! uninstall without `waba_info` needs resolved, and which changes cannot be attributed and
//! go to the dead-letter queue with their reason. Never guess. The partner's own portfolio
//! (`WA_PARTNER_BUSINESS_IDS`) is never a tenant, and an install or uninstall whose
//! `waba_info.partner_app_id` names another app than `WA_APP_ID` is not ours (with
//! Multi-Partner Solutions several apps share a WABA). No I/O.

use std::collections::HashSet;

use serde_json::Value;
use wa_envelope::ChangeMessage;
use wa_ids::{AppId, BusinessId, WabaId};
use wa_store::{Install, Uninstall};

use super::{Rejected, id, optional_id, text};

/// What to do with one `account_update` change.
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
    /// `PARTNER_APP_INSTALLED` or `PARTNER_APP_UNINSTALLED` naming another app: not ours,
    /// changes no tenant.
    OtherApp {
        /// `value.event`.
        event: String,
        /// The WABA it names, if it names one.
        waba_id: Option<WabaId>,
        /// `waba_info.partner_app_id`.
        partner_app_id: AppId,
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
}

/// Decides what `change` asks for. `partner_business_ids` are the partner's own portfolio
/// ids (`WA_PARTNER_BUSINESS_IDS`): never a tenant; `app_id` is the partner's app
/// (`WA_APP_ID`). Every id it names is parsed here, once: a malformed id is a malformed
/// change.
///
/// # Errors
///
/// [`Rejected`] with the reason when the change cannot be applied safely.
pub fn plan(
    change: &ChangeMessage,
    partner_business_ids: &HashSet<BusinessId>,
    app_id: &AppId,
) -> Result<Plan, Rejected> {
    if change.field != "account_update" {
        return Err(Rejected(format!(
            "field `{}` is not handled by this worker",
            change.field
        )));
    }
    let Some(event_time) = change.entry_time else {
        return Err(Rejected(
            "entry.time missing: the event cannot be ordered".into(),
        ));
    };
    let value = &change.value;
    let Some(event) = text(value, "event") else {
        return Err(Rejected("value.event missing".into()));
    };
    let waba_info = value.get("waba_info").filter(|w| w.is_object());
    let partner_entry = partner_business_ids.contains(change.entry_id.as_str());
    let named_waba = waba_info.and_then(|info| text(info, "waba_id"));
    if let Some(plan) = other_app(&event, waba_info, app_id)? {
        return Ok(plan);
    }
    match event.as_str() {
        "PARTNER_APP_INSTALLED" => {
            let Some(info) = waba_info else {
                return Err(Rejected("PARTNER_APP_INSTALLED without waba_info".into()));
            };
            install(info, event_time, partner_business_ids).map(Plan::Install)
        }
        "PARTNER_APP_UNINSTALLED" => match named_waba {
            Some(waba_id) => Ok(Plan::Uninstall(Uninstall {
                waba_id: id(waba_id, "waba_info.waba_id")?,
                owner_business_id: optional_id(
                    waba_info.and_then(|info| text(info, "owner_business_id")),
                    "waba_info.owner_business_id",
                )?,
                event_time,
            })),
            None if partner_entry => Err(Rejected(format!(
                "uninstall without waba_info for entry.id {} (the partner's own portfolio)",
                change.entry_id
            ))),
            None => Ok(Plan::UninstallByEntry {
                entry_id: id(change.entry_id.clone(), "entry.id")?,
                entry_owner: id(change.entry_id.clone(), "entry.id")?,
                event_time,
            }),
        },
        _ => {
            let waba_id = match named_waba {
                Some(waba_id) => id(waba_id, "waba_info.waba_id")?,
                None if partner_entry => {
                    return Err(Rejected(format!(
                        "{event} for entry.id {} (the partner's own portfolio) without waba_info",
                        change.entry_id
                    )));
                }
                None => id(change.entry_id.clone(), "entry.id")?,
            };
            Ok(Plan::Account {
                waba_id,
                event,
                value: value.clone(),
                event_time,
            })
        }
    }
}

/// An install or uninstall whose `waba_info` names another app than `app_id`.
fn other_app(
    event: &str,
    waba_info: Option<&Value>,
    app_id: &AppId,
) -> Result<Option<Plan>, Rejected> {
    if !matches!(event, "PARTNER_APP_INSTALLED" | "PARTNER_APP_UNINSTALLED") {
        return Ok(None);
    }
    let Some(info) = waba_info else {
        return Ok(None);
    };
    let Some(partner_app_id) =
        optional_id::<AppId>(text(info, "partner_app_id"), "waba_info.partner_app_id")?
    else {
        return Ok(None);
    };
    if &partner_app_id == app_id {
        return Ok(None);
    }
    Ok(Some(Plan::OtherApp {
        event: event.to_owned(),
        waba_id: optional_id(text(info, "waba_id"), "waba_info.waba_id")?,
        partner_app_id,
    }))
}

/// A `PARTNER_APP_INSTALLED` from its `waba_info`.
fn install(
    info: &Value,
    event_time: i64,
    partner_business_ids: &HashSet<BusinessId>,
) -> Result<Install, Rejected> {
    let (Some(waba_id), Some(owner_business_id)) =
        (text(info, "waba_id"), text(info, "owner_business_id"))
    else {
        return Err(Rejected(
            "PARTNER_APP_INSTALLED without waba_info.waba_id or owner_business_id".into(),
        ));
    };
    let waba_id = id(waba_id, "waba_info.waba_id")?;
    let owner_business_id: BusinessId = id(owner_business_id, "waba_info.owner_business_id")?;
    if partner_business_ids.contains(&owner_business_id) {
        return Err(Rejected(format!(
            "install owned by the partner's own portfolio {owner_business_id}"
        )));
    }
    let solution_partner_business_ids = info
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
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Install {
        waba_id,
        owner_business_id,
        partner_app_id: optional_id(text(info, "partner_app_id"), "waba_info.partner_app_id")?,
        solution_id: optional_id(text(info, "solution_id"), "waba_info.solution_id")?,
        solution_partner_business_ids,
        event_time,
    })
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

    const APP: &str = "1061231232323117";

    fn plan(change: &ChangeMessage, partners: &HashSet<BusinessId>) -> Result<Plan, Rejected> {
        super::plan(change, partners, &APP.parse().unwrap())
    }

    #[test]
    fn install_and_uninstall_naming_another_app_are_not_ours() {
        for event in ["PARTNER_APP_INSTALLED", "PARTNER_APP_UNINSTALLED"] {
            let v = json!({"event": event, "waba_info": {"waba_id": "5",
                "owner_business_id": "6", "partner_app_id": "777"}});
            assert_eq!(
                plan(&change("9", Some(1), v), &partners()),
                Ok(Plan::OtherApp {
                    event: event.into(),
                    waba_id: Some("5".parse().unwrap()),
                    partner_app_id: "777".parse().unwrap()
                })
            );
            let ours = json!({"event": event, "waba_info": {"waba_id": "5",
                "owner_business_id": "6", "partner_app_id": APP}});
            assert!(!matches!(
                plan(&change("9", Some(1), ours), &partners()),
                Ok(Plan::OtherApp { .. })
            ));
        }
    }

    #[test]
    fn install_reads_waba_info_not_entry_id() {
        let v = json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {
            "waba_id": "495709166956424", "owner_business_id": "942647313864044",
            "partner_app_id": "1061231232323117", "solution_id": "580381314521123",
            "solution_partner_business_ids": ["2949482758682047", "3112233445566778"]}});
        let Ok(Plan::Install(install)) =
            plan(&change("2949482758682047", Some(10), v), &partners())
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
            assert!(plan(&change("9", Some(1), v), &partners()).is_err());
        }
    }

    #[test]
    fn uninstall_with_waba_info_names_its_waba() {
        let v = json!({"event": "PARTNER_APP_UNINSTALLED", "waba_info": {"waba_id": "5", "owner_business_id": "6"}});
        assert_eq!(
            plan(&change("2949482758682047", Some(20), v), &partners()),
            Ok(Plan::Uninstall(Uninstall {
                waba_id: "5".parse().unwrap(),
                owner_business_id: Some("6".parse().unwrap()),
                event_time: 20
            }))
        );
    }

    #[test]
    fn bare_uninstall_is_resolved_by_entry_id_unless_it_is_the_partner() {
        let v = json!({"event": "PARTNER_APP_UNINSTALLED"});
        assert_eq!(
            plan(&change("495709166956424", Some(30), v.clone()), &partners()),
            Ok(Plan::UninstallByEntry {
                entry_id: "495709166956424".parse().unwrap(),
                entry_owner: "495709166956424".parse().unwrap(),
                event_time: 30
            })
        );
        let Err(Rejected(reason)) = plan(&change("2949482758682047", Some(30), v), &partners())
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
                Ok(Plan::Account {
                    waba_id: "77".parse().unwrap(),
                    event: event.into(),
                    value: v,
                    event_time: 40
                })
            );
        }
    }

    #[test]
    fn what_cannot_be_ordered_or_named_is_rejected() {
        let install = json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1", "owner_business_id": "2"}});
        assert!(plan(&change("9", None, install), &partners()).is_err());
        assert!(plan(&change("9", Some(1), json!({})), &partners()).is_err());
        let mut other = change("9", Some(1), json!({"event": "X"}));
        other.field = "messages".into();
        assert!(plan(&other, &partners()).is_err());
        let owned_by_partner = json!({"event": "PARTNER_APP_INSTALLED", "waba_info": {"waba_id": "1", "owner_business_id": "2949482758682047"}});
        assert!(plan(&change("9", Some(1), owned_by_partner), &partners()).is_err());
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
            let Err(Rejected(reason)) = plan(&change(entry, Some(1), v.clone()), &partners())
            else {
                panic!("{v} must be rejected")
            };
            assert!(reason.contains(needle), "{reason}");
        }
    }
}
