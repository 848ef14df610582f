//! Tenants a page at a time, resumable from a [`PagePosition`], and a liveness check of
//! Redis: the read side of the internal API (docs/REFERENCE.md, "Internal API").
//!
//! A page is read with `SCAN MATCH {prefix}tenant:{*}` (never `KEYS`), like [`Store::list`],
//! but stops once it holds `limit` matching records and says where to resume. A `SCAN` step
//! may name more keys than are left to fill the page, so a position is the `SCAN` cursor of
//! the step being read plus the last tenant key taken from it: each step's keys are taken in
//! sorted order, and resuming repeats the step and skips keys up to that one. Keys that exist
//! throughout a listing are therefore returned exactly once, as with `SCAN` itself.
//!
//! A page also stops after [`MAX_SCAN_STEPS`] steps, so a filter that matches little never
//! makes one request walk the whole keyspace: such a page holds fewer records (maybe none)
//! and a position to resume from.
//!
//! The position carries the index of the Redis node being scanned (always `0` on one Redis),
//! so a listing across the primaries of a Redis Cluster can resume on the right node.
//!
//! It reads only; it never writes a key, and never reads a token.

use std::collections::HashMap;

use redis::AsyncCommands as _;
use wa_ids::WabaId;

use crate::{Result, Store, TenantRecord};

/// How many `SCAN` steps one page may take at most.
pub const MAX_SCAN_STEPS: usize = 16;
/// The `COUNT` hint of each `SCAN` step.
const SCAN_COUNT: usize = 256;

/// Where a paged listing resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PagePosition {
    /// The Redis node being scanned, by its index in a stable order of the primaries;
    /// always `0` on one Redis.
    pub node: u16,
    /// The `SCAN` cursor of the step to read (`0` with no `after`: the start).
    pub scan: u64,
    /// The last tenant taken from that step; the step's keys up to it (in sorted order) are
    /// skipped.
    pub after: Option<WabaId>,
}

/// One page of tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records that matched, in the order they were found (no particular order).
    pub records: Vec<TenantRecord>,
    /// Where the next page starts; `None` once the keyspace has been walked.
    pub next: Option<PagePosition>,
}

impl Store {
    /// Up to `limit` tenant records for which `keep` is true, from `from` on.
    ///
    /// A page may hold fewer than `limit` records, even none, and still have a
    /// [`Page::next`]: only `None` means the listing is complete. A tenant created or
    /// removed during a listing may or may not appear; every tenant that exists throughout
    /// appears exactly once.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`]; [`crate::StoreError::Corrupt`] for a record that cannot
    /// be read back; [`crate::StoreError::InvalidInput`] for a position on a node other than
    /// `0` (one Redis has one node).
    #[tracing::instrument(name = "redis tenant_page", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn tenant_page(
        &self,
        from: &PagePosition,
        limit: usize,
        keep: impl Fn(&TenantRecord) -> bool + Send,
    ) -> Result<Page> {
        if from.node != 0 {
            return Err(crate::StoreError::InvalidInput {
                what: "page position",
                value: format!("node {}", from.node),
                reason: "names a node this Redis does not have",
            });
        }
        let limit = limit.max(1);
        let pattern = self.keys.tenant_pattern();
        let mut conn = self.conn();
        let mut scan = from.scan;
        let mut after = from.after.as_ref().map(|w| self.keys.tenant(w));
        let mut records = Vec::new();
        for _ in 0..MAX_SCAN_STEPS {
            let (next, mut keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(scan)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await?;
            keys.sort_unstable();
            keys.dedup();
            if let Some(after) = after.take() {
                keys.retain(|k| *k > after);
            }
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.hgetall(key);
            }
            let hashes: Vec<HashMap<String, String>> = if keys.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            for (i, (key, fields)) in keys.iter().zip(&hashes).enumerate() {
                // An empty hash: the key vanished between SCAN and HGETALL.
                let Some(record) = TenantRecord::from_hash(key, fields)? else {
                    continue;
                };
                if !keep(&record) {
                    continue;
                }
                let waba_id = record.waba_id.clone();
                records.push(record);
                if records.len() == limit {
                    let next = if i + 1 < keys.len() {
                        Some(PagePosition {
                            node: 0,
                            scan,
                            after: Some(waba_id),
                        })
                    } else {
                        (next != 0).then_some(PagePosition {
                            node: 0,
                            scan: next,
                            after: None,
                        })
                    };
                    return Ok(Page { records, next });
                }
            }
            if next == 0 {
                return Ok(Page {
                    records,
                    next: None,
                });
            }
            scan = next;
        }
        Ok(Page {
            records,
            next: Some(PagePosition {
                node: 0,
                scan,
                after: None,
            }),
        })
    }

    /// Whether Redis answers a `PING` (within the store's reply timeout).
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`] when it does not.
    #[tracing::instrument(name = "redis ping", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn ping(&self) -> Result<()> {
        let _: String = self.conn().ping().await?;
        Ok(())
    }
}
