//! The census: every `interval`, one walk over the installed tenants' records, a page at a
//! time, to set the token health gauges (`crate::metrics::CensusMetrics`) — installed
//! tenants by token status, tokens expiring within `WA_TOKEN_REFRESH_BEFORE` (and, of those,
//! the ones no check reached for [`UNCHECKED_AFTER`]), tenants needing attention.
//!
//! One replica at a time walks: the one holding the census lease (`wa_store`'s
//! `lease:{census}`, taken with `SET NX PX` under this replica's id). The holder renews it
//! before each census and after each page, so a walk longer than the lease never lets a
//! second replica start; a replica that stops gives it back, and a crashed one's runs out
//! after [`lease_ttl`]. The others skip, exporting no census gauge at all, so `max` or `sum`
//! across replicas is the holder's count. A walk holds one page of records at a time
//! (counts, not records, are kept); like every `SCAN`, it may count a tenant twice while
//! Redis rehashes, which the next census corrects.
//!
//! Reads Redis only, never a token; a failed walk is logged and the holder's gauges keep
//! their last values until the next one.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wa_store::{PagePosition, Status, Store, TenantRecord, TokenStatus};

use crate::{
    effects::account_update::now,
    metrics::{Census, CensusRun, Metrics},
};

/// Records read per page of a walk.
const PAGE: usize = 1000;
/// Room in the census lease beyond three intervals, for a slow Redis or a busy process.
const LEASE_SLACK: Duration = Duration::from_secs(5);

/// How long since its last check an active token inside the refresh window counts as not
/// checked (`wa_tenant_tokens_expiring_unchecked`): the daily `reconcile --all` plus two hours
/// for the run and its retries, so only a missed run (or checks nobody consumes) shows.
pub const UNCHECKED_AFTER: Duration = Duration::from_secs(26 * 3600);

/// How long the census lease holds once taken or renewed: three intervals and
/// [`LEASE_SLACK`], so a holder late by two intervals keeps it and a crashed one's runs out
/// within that.
pub fn lease_ttl(interval: Duration) -> Duration {
    interval.saturating_mul(3).saturating_add(LEASE_SLACK)
}

/// A census being counted, one record at a time.
struct Tally {
    census: Census,
    /// Tokens expiring before this are in the refresh window.
    deadline: i64,
    /// Checks before this are too old.
    unchecked_before: i64,
}

impl Tally {
    fn new(now: i64, refresh_before: Duration) -> Self {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            census: Census::default(),
            deadline: now.saturating_add(secs(refresh_before)),
            unchecked_before: now.saturating_sub(secs(UNCHECKED_AFTER)),
        }
    }

    /// Counts `r`, if installed.
    fn add(&mut self, r: &TenantRecord) {
        if r.status != Status::Installed {
            return;
        }
        let census = &mut self.census;
        if let Some(status) = r.token.status {
            bump(&mut census.tokens, status);
            let expiring = r
                .token
                .expires_at
                .is_some_and(|t| t != 0 && t < self.deadline);
            if status == TokenStatus::Active && expiring {
                census.expiring += 1;
                if r.token.checked_at.is_none_or(|t| t < self.unchecked_before) {
                    census.expiring_unchecked += 1;
                }
            }
        }
        for a in &r.attention {
            bump(&mut census.attention, *a);
        }
    }
}

fn bump<T: PartialEq>(counts: &mut Vec<(T, i64)>, key: T) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

/// This replica's id in the census lease: its host name (the pod's, in Kubernetes), for
/// operators reading the lease, and a random part, so two processes never share one.
fn replica_id() -> String {
    let host: String = std::env::var("HOSTNAME")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(64)
        .collect();
    let host = if host.is_empty() { "worker" } else { &host };
    format!("{host}/{:016x}", rand::random::<u64>())
}

/// Walks every tenant once, renewing the lease after each page. `None` when the lease was
/// lost mid-walk (another replica counts now).
async fn walk(
    store: &Store,
    holder: &str,
    ttl: Duration,
    refresh_before: Duration,
) -> wa_store::Result<Option<Census>> {
    let mut tally = Tally::new(now(), refresh_before);
    let mut at = PagePosition::default();
    loop {
        let page = store
            .tenant_page(&at, PAGE, |r| r.status == Status::Installed)
            .await?;
        for r in &page.records {
            tally.add(r);
        }
        match page.next {
            Some(next) => at = next,
            None => return Ok(Some(tally.census)),
        }
        if !store.hold_census_lease(holder, ttl).await? {
            return Ok(None);
        }
    }
}

/// Runs the census every `interval` until `shutdown`, on this replica whenever it holds the
/// census lease; gives the lease back on shutdown.
pub async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    refresh_before: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let census = &metrics.checks.census;
    let holder = replica_id();
    let ttl = lease_ttl(interval);
    let mut holding = false;
    loop {
        // Whether this replica holds the lease after this run: only then are gauges exported.
        let (run, held) = match store.hold_census_lease(&holder, ttl).await {
            Ok(true) => {
                if !holding {
                    info!(%holder, "census lease taken: this replica counts the tenants");
                }
                match walk(&store, &holder, ttl, refresh_before).await {
                    Ok(Some(counted)) => {
                        census.counted(counted);
                        (CensusRun::Counted, true)
                    }
                    // Another replica took the lease mid-walk: it counts now.
                    Ok(None) => (CensusRun::Skipped, false),
                    Err(e) => {
                        warn!(error = %e, "tenant census failed; gauges kept");
                        (CensusRun::Failed, true)
                    }
                }
            }
            Ok(false) => (CensusRun::Skipped, false),
            Err(e) => {
                // Whether this replica still holds the lease is unknown: its count may be
                // another's by now.
                warn!(error = %e, "census lease not reached; gauges dropped");
                (CensusRun::Failed, false)
            }
        };
        if !held {
            census.forget();
        }
        holding = held;
        census.run(run);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    if let Err(e) = store.release_census_lease(&holder).await {
        warn!(error = %e, "census lease not given back; it runs out by itself");
    }
}

#[cfg(test)]
mod tests {
    use wa_store::Attention;

    use super::*;

    /// Counts `records` (installed tenants only) at `now`, with the refresh window `refresh_before`.
    fn count<'a>(
        records: impl IntoIterator<Item = &'a TenantRecord>,
        now: i64,
        refresh_before: Duration,
    ) -> Census {
        let mut tally = Tally::new(now, refresh_before);
        for r in records {
            tally.add(r);
        }
        tally.census
    }

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
