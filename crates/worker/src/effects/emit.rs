//! The tenant event of a change an effect applied: the tenant record as it stands right
//! after the change, under the event's stable id (`crate::events`).
//!
//! Shared by the effects of `account_update` and business integration webhooks, which decide
//! when a change deserves an event and publish it before reporting the change applied. Reads
//! Redis only; never publishes by itself.

use tracing::warn;
use wa_ids::{DedupeKey, WabaId};
use wa_store::Store;

use crate::{
    events::{EventKind, TenantEvent},
    outcome::Failure,
};

/// The event `kind` about `waba_id`, caused by the change `cause` at `occurred_at` (its
/// `entry.time`); `None` if the tenant has no record (never the case right after a change
/// was applied to it).
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
    Ok(Some(TenantEvent::new(kind, cause, occurred_at, &record)))
}
