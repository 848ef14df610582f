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

/// Whether an uninstall at `event_time` finds the tenant already uninstalled by an older
/// change (`before`, its record read just before the uninstall was applied): re-applying it
/// moves `uninstalled_at` only, and `tenant.uninstalled` was published when it happened. An
/// uninstall at this very time is this change's own earlier attempt (whose event may never
/// have been confirmed), so `false` then, and for a tenant that was not uninstalled.
pub(super) fn uninstalled_before(before: Option<&TenantRecord>, event_time: i64) -> bool {
    before.is_some_and(|t| {
        t.status == Status::Uninstalled && t.uninstalled_at.is_some_and(|at| at < event_time)
    })
}
