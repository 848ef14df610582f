//! The census: every `interval`, one walk over the installed tenants' records, a page at a
//! time, to count token health — installed tenants by token status, tokens expiring within
//! `WA_TOKEN_REFRESH_BEFORE` (and, of those, the ones no check reached for
//! [`UNCHECKED_AFTER`]), tenants needing attention — and every replica's gauges showing the
//! last count (`crate::metrics::CensusMetrics`).
//!
//! One replica at a time walks: the one holding the census lease (`wa_store`'s
//! `lease:{census}`, taken with `SET NX PX` under this replica's id). The holder renews it
//! before each census and after each page (the last one's renewal is the publishing itself),
//! so a walk longer than the lease never lets a second replica start; a replica that stops
//! gives it back, and a crashed one's runs out after [`lease_ttl`]. The count is published
//! to Redis (`census:{census}`) in one script that checks the lease first, so a holder that
//! lost its lease never publishes. Every replica, holder or not, reads the published census
//! back after each run and exports it, so the gauges stay whole while the lease changes
//! hands.
//!
//! A walk holds one page of records at a time and the 64-bit hashes of the WABA ids it
//! counted (8 bytes a tenant and the set's overhead), so a tenant `SCAN` returns twice is
//! counted once.
//!
//! A failed walk is logged, and the last census stays published; after
//! [`MAX_FAILED_WALKS`] in a row the holder gives the lease back and sits out as many runs,
//! so another replica tries (the published census ages meanwhile:
//! `wa_tenant_census_age_seconds`).
//!
//! Reads Redis only, never a token; writes only the lease and the census.

use std::{
    collections::HashSet,
    hash::{BuildHasher, RandomState},
    sync::Arc,
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wa_store::{Census, PagePosition, Status, Store, TenantRecord, TokenStatus};

use crate::{
    clock::unix_now,
    metrics::{CensusRun, Metrics},
};

/// Records read per page of a walk.
const PAGE: usize = 1000;
/// Room in the census lease beyond three intervals, for a slow Redis or a busy process.
const LEASE_SLACK: Duration = Duration::from_secs(5);
/// Failed walks in a row after which the holder gives the lease back (and sits out as many
/// runs), so another replica tries.
pub const MAX_FAILED_WALKS: u32 = 3;

/// How long since its last check an active token inside the refresh window counts as not
/// checked (`wa_tenant_tokens_expiring_unchecked`): the daily `reconcile --all` CronJob
/// (deploy/kubernetes) plus two hours for the run and its retries through the delay tiers,
/// so only a missed run (or checks nobody consumes, or checks dead-lettered) shows.
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
    /// Hashes of the WABA ids counted, so one `SCAN` returns twice counts once.
    seen: HashSet<u64>,
    hasher: RandomState,
    /// Tokens expiring before this are in the refresh window.
    deadline: i64,
    /// Checks before this are too old.
    unchecked_before: i64,
}

impl Tally {
    fn new(now: i64, refresh_before: Duration) -> Self {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            census: Census {
                counted_at: now,
                ..Census::default()
            },
            seen: HashSet::new(),
            hasher: RandomState::new(),
            deadline: now.saturating_add(secs(refresh_before)),
            unchecked_before: now.saturating_sub(secs(UNCHECKED_AFTER)),
        }
    }

    /// Counts `r`, if installed and not counted yet.
    fn add(&mut self, r: &TenantRecord) {
        if r.status != Status::Installed || !self.seen.insert(self.hasher.hash_one(&r.waba_id)) {
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

/// One replica's part in the census.
struct Counter {
    store: Store,
    holder: String,
    ttl: Duration,
    refresh_before: Duration,
    /// Whether the last run held the lease (to log a change only).
    holding: bool,
    /// Failed walks in a row while holding.
    failed_walks: u32,
    /// Runs left to sit out after giving the lease back.
    sitting_out: u32,
}

impl Counter {
    /// Walks every tenant once, renewing the lease after each page, and publishes the count
    /// under the lease. `false` when the lease was lost (another replica counts now).
    async fn walk(&self) -> wa_store::Result<bool> {
        let mut tally = Tally::new(unix_now(), self.refresh_before);
        let mut at = PagePosition::default();
        loop {
            let page = self
                .store
                .tenant_page(&at, PAGE, |r| r.status == Status::Installed)
                .await?;
            for r in &page.records {
                tally.add(r);
            }
            let Some(next) = page.next else {
                return self
                    .store
                    .publish_census(&self.holder, self.ttl, &tally.census)
                    .await;
            };
            at = next;
            if !self.store.hold_census_lease(&self.holder, self.ttl).await? {
                return Ok(false);
            }
        }
    }

    /// One run: counts and publishes if this replica holds (or takes) the lease.
    async fn run(&mut self) -> CensusRun {
        if self.sitting_out > 0 {
            self.sitting_out -= 1;
            return CensusRun::Skipped;
        }
        let held = match self.store.hold_census_lease(&self.holder, self.ttl).await {
            Ok(held) => held,
            Err(e) => {
                warn!(error = %e, "census lease not reached");
                return CensusRun::Failed;
            }
        };
        if held && !self.holding {
            info!(holder = %self.holder, "census lease taken: this replica counts the tenants");
        }
        self.holding = held;
        if !held {
            return CensusRun::Skipped;
        }
        match self.walk().await {
            Ok(true) => {
                self.failed_walks = 0;
                CensusRun::Counted
            }
            // Another replica took the lease: it counts now.
            Ok(false) => {
                self.holding = false;
                CensusRun::Skipped
            }
            Err(e) => {
                self.failed_walks += 1;
                warn!(error = %e, failed_walks = self.failed_walks, "tenant census failed; the last census stays published");
                if self.failed_walks >= MAX_FAILED_WALKS {
                    self.give_back().await;
                    self.sitting_out = MAX_FAILED_WALKS;
                    warn!(
                        "census lease given back after {MAX_FAILED_WALKS} failed walks: another replica tries"
                    );
                }
                CensusRun::Failed
            }
        }
    }

    async fn give_back(&mut self) {
        self.holding = false;
        self.failed_walks = 0;
        if let Err(e) = self.store.release_census_lease(&self.holder).await {
            warn!(error = %e, "census lease not given back; it runs out by itself");
        }
    }
}

/// Runs the census every `interval` until `shutdown`: counts whenever this replica holds the
/// census lease (held for `ttl`), and after every run shows the last census published; gives
/// the lease back on shutdown.
pub async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    refresh_before: Duration,
    interval: Duration,
    ttl: Duration,
    shutdown: CancellationToken,
) {
    let gauges = &metrics.checks.census;
    let mut counter = Counter {
        store: store.clone(),
        holder: replica_id(),
        ttl,
        refresh_before,
        holding: false,
        failed_walks: 0,
        sitting_out: 0,
    };
    loop {
        gauges.run(counter.run().await);
        match store.census().await {
            Ok(Some(census)) => gauges.show(census),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "census not read; the gauges show the last one read"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    counter.give_back().await;
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

    /// A record of an installed tenant with an active token, changed by `json`; each with
    /// its own WABA id unless `json` names one.
    fn record(json: serde_json::Value) -> TenantRecord {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut base = serde_json::json!({"waba_id": id.to_string(), "owner_business_id": null,
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

    #[test]
    fn a_tenant_the_walk_returns_twice_counts_once() {
        let week = Duration::from_secs(7 * 86_400);
        let invalid = serde_json::json!({"status": "invalid", "fetched_at": 1,
            "expires_at": 0, "checked_at": 1, "error": null});
        let twice = record(serde_json::json!({"token": invalid, "attention": ["token_invalid"]}));
        let other = record(serde_json::json!({"waba_id": "2"}));
        let census = count([&twice, &other, &twice], 1_000_000, week);
        assert_eq!(census.counted_at, 1_000_000);
        assert_eq!(
            census.tokens,
            [(TokenStatus::Invalid, 1), (TokenStatus::Active, 1)]
        );
        assert_eq!(census.attention, [(Attention::TokenInvalid, 1)]);
    }
}
