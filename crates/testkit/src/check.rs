//! A tenant check's findings recorded as the worker records them: under the tenant's check
//! lease, for the install generation read before the record, through
//! `Store::record_checked`, the only way wa-store writes findings. For tests that need a
//! tenant in a state only a check leaves (a token found invalid, attention flagged).

use std::time::Duration;

use wa_ids::WabaId;
use wa_store::{CheckFindings, CheckGuard, Store};

/// Records `findings` on `waba_id` as a check that has just read the record would; whether
/// they were recorded (not when the install they name is not the one in effect).
///
/// # Errors
///
/// [`wa_store::StoreError`] from Redis, or for findings the store refuses.
///
/// # Panics
///
/// While another check of the tenant holds its lease.
pub async fn record_check(
    store: &Store,
    waba_id: &WabaId,
    findings: &CheckFindings,
) -> wa_store::Result<bool> {
    let install_seq = store.install_seq(waba_id).await?;
    let lease = store
        .lease_check(waba_id, Duration::from_secs(30))
        .await?
        .expect("no other check of this tenant runs in the test");
    let guard = CheckGuard { install_seq, lease };
    let recorded = store.record_checked(waba_id, findings, &guard).await;
    store.release_check(waba_id, &guard.lease).await?;
    recorded
}
