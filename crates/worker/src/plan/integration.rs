//! The plan for a business integration webhook: object `application`, field
//! `business_integration_install` or `business_integration_uninstall` (value
//! `{business_manager_id, tp_config_id}`, `entry.id` = the app id, ordered by `entry.time`).
//!
//! An uninstall uninstalls every tenant that business owns, with the same ordering rules as
//! `PARTNER_APP_UNINSTALLED`, and is remembered on the business so that a late, older install
//! of one of its WABAs is not applied as current; an install is only recorded (it names no
//! WABA, so there is no token to fetch: the WABA's own `PARTNER_APP_INSTALLED` does that). The
//! partner's own portfolio is never a tenant. No I/O.

use std::collections::HashSet;

use wa_envelope::ChangeMessage;
use wa_ids::BusinessId;

use super::{Rejected, id, text};

/// The `object` of a business integration webhook.
pub const OBJECT: &str = "application";

/// What to do with one business integration webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Installed (`business_integration_install`) or uninstalled.
    pub change: Change,
    /// `value.business_manager_id`.
    pub business_id: BusinessId,
    /// `entry.time`.
    pub event_time: i64,
}

/// Which way the integration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `business_integration_install`: recorded on the business.
    Install,
    /// `business_integration_uninstall`: every tenant the business owns is uninstalled and
    /// its token revoked.
    Uninstall,
}

/// Decides what an `application` change asks for. `partner_business_ids` are the partner's
/// own portfolio ids (`WA_PARTNER_BUSINESS_IDS`): never a tenant.
///
/// # Errors
///
/// [`Rejected`] with the reason when the change cannot be applied safely.
pub fn plan(
    change: &ChangeMessage,
    partner_business_ids: &HashSet<BusinessId>,
) -> Result<Plan, Rejected> {
    let kind = match change.field.as_str() {
        "business_integration_install" => Change::Install,
        "business_integration_uninstall" => Change::Uninstall,
        other => {
            return Err(Rejected(format!(
                "application field `{other}` is not handled by this worker"
            )));
        }
    };
    let Some(event_time) = change.entry_time else {
        return Err(Rejected(
            "entry.time missing: the event cannot be ordered".into(),
        ));
    };
    let Some(business_id) = text(&change.value, "business_manager_id") else {
        return Err(Rejected(format!(
            "{} without value.business_manager_id",
            change.field
        )));
    };
    let business_id: BusinessId = id(business_id, "value.business_manager_id")?;
    if partner_business_ids.contains(&business_id) {
        return Err(Rejected(format!(
            "{} for the partner's own portfolio {business_id}",
            change.field
        )));
    }
    Ok(Plan {
        change: kind,
        business_id,
        event_time,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn partners() -> HashSet<BusinessId> {
        HashSet::from(["2949482758682047".parse().unwrap()])
    }

    fn integration(field: &str, time: Option<i64>, value: Value) -> ChangeMessage {
        ChangeMessage {
            id: "ab".repeat(32).parse().unwrap(),
            object: "application".into(),
            entry_id: "1061231232323117".into(),
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
            Ok(Plan {
                change: Change::Uninstall,
                business_id: "942647313864044".parse().unwrap(),
                event_time: 50
            })
        );
        let change = integration("business_integration_install", Some(40), v.clone());
        assert_eq!(
            plan(&change, &partners()),
            Ok(Plan {
                change: Change::Install,
                business_id: "942647313864044".parse().unwrap(),
                event_time: 40
            })
        );
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
            let Err(Rejected(reason)) = plan(&change, &partners()) else {
                panic!("{change:?} must be rejected")
            };
            assert!(reason.contains(needle), "{reason}");
        }
    }

    #[test]
    fn a_malformed_business_id_is_a_malformed_change() {
        let v = json!({"business_manager_id": "bm-1"});
        let Err(Rejected(reason)) = plan(
            &integration("business_integration_install", Some(1), v),
            &partners(),
        ) else {
            panic!("must be rejected")
        };
        assert!(reason.contains("business_manager_id"), "{reason}");
    }
}
