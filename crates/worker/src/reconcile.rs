//! `reconcile`: which tenants to check, and queueing one check each on `wa.tenant_checks`
//! with publisher confirms. The checks themselves run in the workers (`crate::effects::check`)
//! so they spread over every replica, retry through the delay tiers and never run twice at
//! once for one tenant.
//!
//! Reads tenant records (never a token) and publishes; never changes Redis.

use std::collections::HashSet;

use wa_broker::{Broker, BrokerError, Outgoing};
use wa_ids::WabaId;
use wa_store::{PagePosition, Status, Store, TenantRecord};

use crate::plan::check::{CheckMessage, ROUTING_KEY};

/// Records read per page while listing installed tenants.
const PAGE: usize = 1000;
/// Checks published per confirmed batch.
const BATCH: usize = 500;

/// The WABA ids of every installed tenant, each once, walking the store's paged listing
/// (which resumes across Redis Cluster nodes).
///
/// # Errors
///
/// [`wa_store::StoreError`] from Redis.
pub async fn installed_tenants(store: &Store) -> wa_store::Result<Vec<WabaId>> {
    let mut ids: Vec<WabaId> = installed_records(store)
        .await?
        .into_iter()
        .map(|r| r.waba_id)
        .collect();
    ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(ids)
}

/// The record of every installed tenant, each once (`SCAN` may return one twice).
///
/// # Errors
///
/// [`wa_store::StoreError`] from Redis.
pub async fn installed_records(store: &Store) -> wa_store::Result<Vec<TenantRecord>> {
    let mut seen = HashSet::new();
    let mut records = Vec::new();
    let mut at = PagePosition::default();
    loop {
        let page = store
            .tenant_page(&at, PAGE, |r| r.status == Status::Installed)
            .await?;
        records.extend(
            page.records
                .into_iter()
                .filter(|r| seen.insert(r.waba_id.clone())),
        );
        match page.next {
            Some(next) => at = next,
            None => return Ok(records),
        }
    }
}

/// Queues one check of each of `wabas` (`{"waba_id", "reason"}`, persistent, a fresh
/// `message_id` each), in batches that the broker confirms; calls `progress(done, total)`
/// after each. Returns once every check is confirmed.
///
/// # Errors
///
/// [`BrokerError`]: checks of the failed batch and after it may not be queued; queueing
/// again is harmless (a check is idempotent, and one per tenant runs at a time).
pub async fn queue_checks(
    broker: &Broker,
    wabas: &[WabaId],
    reason: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize, BrokerError> {
    let exchange = broker.topology().webhooks_exchange();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run = rand::random::<u64>();
    let mut done = 0;
    for batch in wabas.chunks(BATCH) {
        let messages: Vec<Outgoing> = batch
            .iter()
            .enumerate()
            .map(|(i, waba_id)| {
                let id = format!("check-{run:016x}-{:08x}", done + i);
                Outgoing::persistent_json(
                    exchange.as_str(),
                    ROUTING_KEY,
                    CheckMessage::body(waba_id, reason),
                    &id,
                    now,
                )
            })
            .collect();
        broker.publish_all(&messages).await?;
        done += batch.len();
        progress(done, wabas.len());
    }
    Ok(done)
}
