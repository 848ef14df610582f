//! The census: every `interval`, one walk over the installed tenants' records (a page at a
//! time, as `reconcile --all` lists them) to set the token health gauges — installed tenants by token
//! status, tokens expiring within `WA_TOKEN_REFRESH_BEFORE` (and, of those, the ones no check
//! reached for [`UNCHECKED_AFTER`]), tenants needing attention.
//!
//! Reads Redis only, never a token; a failed walk is logged and the gauges keep their last
//! values until the next one.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use wa_store::{Status, Store, TenantRecord, TokenStatus};

use crate::{effects::account_update::now, metrics::Census, metrics::Metrics};

/// How long since its last check an active token inside the refresh window counts as not
/// checked (`wa_tenant_tokens_expiring_unchecked`): the daily `reconcile --all` plus two hours
/// for the run and its retries, so only a missed run (or checks nobody consumes) shows.
pub const UNCHECKED_AFTER: Duration = Duration::from_secs(26 * 3600);

/// Counts `records` (installed tenants only) at `now`, with the refresh window `refresh_before`.
pub fn count<'a>(
    records: impl IntoIterator<Item = &'a TenantRecord>,
    now: i64,
    refresh_before: Duration,
) -> Census {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let deadline = now.saturating_add(secs(refresh_before));
    let unchecked_before = now.saturating_sub(secs(UNCHECKED_AFTER));
    let mut census = Census::default();
    for r in records
        .into_iter()
        .filter(|r| r.status == Status::Installed)
    {
        if let Some(status) = r.token.status {
            bump(&mut census.tokens, status);
            let expiring = r.token.expires_at.is_some_and(|t| t != 0 && t < deadline);
            if status == TokenStatus::Active && expiring {
                census.expiring += 1;
                if r.token.checked_at.is_none_or(|t| t < unchecked_before) {
                    census.expiring_unchecked += 1;
                }
            }
        }
        for a in &r.attention {
            bump(&mut census.attention, *a);
        }
    }
    census
}

fn bump<T: PartialEq>(counts: &mut Vec<(T, i64)>, key: T) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

/// Walks every tenant once and counts.
async fn walk(store: &Store, refresh_before: Duration) -> wa_store::Result<Census> {
    let records = crate::reconcile::installed_records(store).await?;
    Ok(count(&records, now(), refresh_before))
}

/// Runs the census every `interval` until `shutdown`.
pub async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    refresh_before: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match walk(&store, refresh_before).await {
            Ok(census) => metrics.checks.census(&census),
            Err(e) => tracing::warn!(error = %e, "tenant census failed; gauges kept"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use wa_store::Attention;

    use super::*;

    fn record(json: serde_json::Value) -> TenantRecord {
        let mut base = serde_json::json!({"waba_id": "1", "owner_business_id": null,
            "status": "installed", "partner_app_id": null, "solution_id": null,
            "solution_partner_business_ids": [], "phone_number_ids": [],
            "phone_numbers_verified": false, "installed_at": 1, "uninstalled_at": null,
            "last_event_time": 1, "token": {"status": "active", "fetched_at": 1,
            "expires_at": 0, "checked_at": 1, "error": null}, "subscribed": true,
            "attention": [], "account": {"ban_state": null, "restrictions": [],
            "violation": null, "partner_removed": false, "deleted": false,
            "offboarded": false}});
        for (k, v) in json.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn counts_installed_tenants_by_status_expiry_and_attention() {
        let week = Duration::from_secs(7 * 86_400);
        let now = 1_000_000;
        let expiring = serde_json::json!({"status": "active", "fetched_at": 1,
            "expires_at": now + 3600, "checked_at": 1, "error": null});
        let invalid = serde_json::json!({"status": "invalid", "fetched_at": 1,
            "expires_at": 0, "checked_at": 1, "error": null});
        let records = [
            record(serde_json::json!({})),
            record(serde_json::json!({"token": expiring, "attention": ["token_expiring"]})),
            record(serde_json::json!({"token": invalid, "attention": ["token_invalid"]})),
            record(serde_json::json!({"status": "uninstalled", "attention": ["token_invalid"]})),
        ];
        let census = count(&records, now, week);
        assert_eq!(
            census.tokens,
            [(TokenStatus::Active, 2), (TokenStatus::Invalid, 1)]
        );
        assert_eq!(census.expiring, 1);
        assert_eq!(census.expiring_unchecked, 1, "checked at 1, long ago");
        assert_eq!(
            census.attention,
            [(Attention::TokenExpiring, 1), (Attention::TokenInvalid, 1)]
        );
    }

    #[test]
    fn a_token_in_the_window_counts_unchecked_only_once_no_check_reached_it_for_26_hours() {
        let week = Duration::from_secs(7 * 86_400);
        let now = 1_000_000;
        let token = |checked_at: Option<i64>| {
            record(
                serde_json::json!({"token": {"status": "active", "fetched_at": 1,
                "expires_at": now + 3600, "checked_at": checked_at, "error": null}}),
            )
        };
        let day = 86_400;
        let records = [
            token(Some(now - 3600)),
            token(Some(now - day)),
            token(Some(now - 26 * 3600 - 1)),
            token(None),
        ];
        let census = count(&records, now, week);
        assert_eq!(census.expiring, 4);
        assert_eq!(census.expiring_unchecked, 2);
    }
}
