//! The tenant event of a change an effect applied: the tenant record as it stands right
//! after the change, under the event's stable id (`crate::events`). The record is read after
//! the change, not in the same step: if a newer change moved the tenant on meanwhile (an
//! uninstall landed while an install asked Graph), the record no longer is what the event's
//! type announces, and no event is built; the newer change publishes its own.
//!
//! Shared by the effects of `account_update` and business integration webhooks, which decide
//! when a change deserves an event and publish it before reporting the change applied. Reads
//! Redis only; never publishes by itself.

use tracing::{info, warn};
use wa_ids::{DedupeKey, WabaId};
use wa_store::{Status, Store, TenantRecord};

use crate::{
    events::{EventKind, TenantEvent},
    outcome::Failure,
};

/// The event `kind` about `waba_id`, caused by the change `cause` at `occurred_at` (its
/// `entry.time`); `None` if the tenant has no record (never the case right after a change
/// was applied to it), or if a newer change already moved it out of the state `kind`
/// announces ([`EventKind::describes`]).
///
/// # Errors
///
/// [`Failure`] from Redis.
pub(super) async fn tenant_event(
    store: &Store,
    kind: EventKind,
    cause: &DedupeKey,
    waba_id: &WabaId,
    occurred_at: i64,
) -> Result<Option<TenantEvent>, Failure> {
    let Some(record) = store.get(waba_id).await? else {
        warn!(%waba_id, r#type = kind.as_str(), "no tenant record to report; no event");
        return Ok(None);
    };
    if !kind.describes(&record) {
        info!(%waba_id, r#type = kind.as_str(), status = record.status.as_str(),
            "a newer change moved the tenant on; it publishes its own event; none for this one");
        return Ok(None);
    }
    Ok(Some(TenantEvent::new(kind, cause, occurred_at, &record)))
}

/// Whether an uninstall at `event_time` found the tenant already uninstalled by an older
/// change: re-applying it moved `uninstalled_at` only, and `tenant.uninstalled` was published
/// when that older change happened. `applied` is the uninstall script's answer (the status
/// it replaced, read in the same atomic step) and `before` the record read just before it;
/// an uninstall at this very time is this change's own earlier attempt (whose event may never
/// have been confirmed), so `false` then, and for a tenant that was installed.
pub(super) fn uninstalled_before(
    before: Option<&TenantRecord>,
    applied: &wa_store::Applied,
    event_time: i64,
) -> bool {
    applied.previous_status == Some(Status::Uninstalled)
        && before.is_some_and(|t| t.uninstalled_at.is_some_and(|at| at < event_time))
}

#[cfg(test)]
mod tests {
    use wa_store::{Applied, TokenStatus};

    use super::*;

    fn uninstalled_at(at: i64) -> TenantRecord {
        serde_json::from_value(serde_json::json!({
            "waba_id": "1", "owner_business_id": "2", "status": "uninstalled",
            "partner_app_id": null, "solution_id": null, "solution_partner_business_ids": [],
            "phone_number_ids": [], "phone_numbers_verified": false, "installed_at": 10,
            "uninstalled_at": at, "last_event_time": at,
            "token": {"status": "revoked", "fetched_at": 11, "error": null},
            "subscribed": false,
            "account": {"ban_state": null, "restrictions": [], "violation": null,
                "partner_removed": false, "deleted": false, "offboarded": false}
        }))
        .expect("a record")
    }

    fn replacing(previous: Status) -> Applied {
        Applied {
            stale: false,
            previous_status: Some(previous),
            status: Status::Uninstalled,
            token_status: Some(TokenStatus::Revoked),
            subscribed: false,
            tie: false,
        }
    }

    #[test]
    fn only_an_older_uninstall_already_in_effect_makes_an_uninstall_eventless() {
        let earlier = uninstalled_at(100);
        let uninstalled = replacing(Status::Uninstalled);
        assert!(uninstalled_before(Some(&earlier), &uninstalled, 200));
        // This change's own earlier attempt: its event is published again.
        assert!(!uninstalled_before(Some(&earlier), &uninstalled, 100));
        // Installed again between the read and the uninstall (the script saw it): an event.
        assert!(!uninstalled_before(
            Some(&earlier),
            &replacing(Status::Installed),
            200
        ));
        assert!(!uninstalled_before(
            None,
            &replacing(Status::Installed),
            200
        ));
    }
}
