//! Tenants a page at a time, resumable from a [`PagePosition`], and a liveness check of
//! Redis: the read side of the internal API (docs/REFERENCE.md, "Internal API").
//!
//! A page is read with `SCAN MATCH {prefix}tenant:{*}` (never `KEYS`), like [`Store::list`],
//! asking each step for as many keys as the page still lacks, and stops once it holds `limit`
//! matching records. A page ends on a step boundary: a step whose records would overflow
//! the page is left whole for the next page, which re-issues its cursor. Only when a single
//! step holds more than a whole page does the position also name the last tenant taken; the
//! next page reads that step again and skips its keys up to that one (in sorted order).
//!
//! What this guarantees is `SCAN`'s own: every tenant that exists throughout a listing is
//! returned at least once; one may come twice, or (only in the rare step-larger-than-a-page
//! case, while Redis shrinks its table between the two requests) be skipped, as Redis
//! rehashes under concurrent writes.
//!
//! A page also stops after [`MAX_SCAN_STEPS`] steps, so a filter that matches little never
//! makes one request walk the whole keyspace: such a page holds fewer records (maybe none)
//! and a position to resume from.
//!
//! On a Redis Cluster the listing walks every primary in turn (in the order of their lowest
//! slot, which a failover keeps); the position carries the index of the primary being
//! scanned (always `0` on one Redis), so a page resumes on the right node.
//!
//! It reads only; it never writes a key, and never reads a token.

use std::collections::HashMap;

use redis::AsyncCommands as _;
use wa_ids::WabaId;

use crate::{Result, Store, TenantRecord, conn::Conn};

/// How many `SCAN` steps one page may take at most.
pub const MAX_SCAN_STEPS: usize = 16;
/// The `COUNT` hint of each `SCAN` step.
const SCAN_COUNT: usize = 256;

/// Where a paged listing resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PagePosition {
    /// The Redis node being scanned, by its index among the primaries ordered by their lowest
    /// slot; always `0` on one Redis.
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
    /// appears, as `SCAN` guarantees (see the module docs for the fine print).
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`]; [`crate::StoreError::Corrupt`] for a record that cannot
    /// be read back; [`crate::StoreError::InvalidInput`] for a position on a node Redis does
    /// not have (one Redis has only node `0`).
    #[tracing::instrument(name = "redis tenant_page", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn tenant_page(
        &self,
        from: &PagePosition,
        limit: usize,
        keep: impl Fn(&TenantRecord) -> bool + Send,
    ) -> Result<Page> {
        let mut conn = self.conn();
        let primaries = conn.primaries().await?;
        let mut node = usize::from(from.node);
        if node >= primaries.len() {
            return Err(crate::StoreError::InvalidInput {
                what: "page position",
                value: format!("node {}", from.node),
                reason: "names a node this Redis does not have",
            });
        }
        let limit = limit.max(1);
        let pattern = self.keys.tenant_pattern();
        let mut scan = from.scan;
        let mut after = from.after.as_ref().map(|w| self.keys.tenant(w));
        let mut records: Vec<TenantRecord> = Vec::new();
        let at = |node: usize, scan: u64, after: Option<WabaId>| PagePosition {
            node: u16::try_from(node).unwrap_or(u16::MAX),
            scan,
            after,
        };
        for _ in 0..MAX_SCAN_STEPS {
            let remaining = limit - records.len();
            let mut step_cmd = redis::cmd("SCAN");
            step_cmd
                .arg(scan)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(remaining.min(SCAN_COUNT));
            let (next, mut keys): (u64, Vec<String>) =
                conn.on_primary(primaries[node], step_cmd).await?;
            keys.sort_unstable();
            keys.dedup();
            if let Some(after) = after.take() {
                keys.retain(|k| *k > after);
            }
            let mut step = self.matching(&mut conn, &keys, &keep).await?;
            if step.len() > remaining {
                if !records.is_empty() {
                    // This step does not fit: the next page reads it again, whole.
                    return Ok(Page {
                        records,
                        next: Some(at(node, scan, None)),
                    });
                }
                // One step holds more than a page: take its first `limit` keys (in sorted
                // order) and resume inside it.
                step.truncate(limit);
                let last = step.last().map(|r| r.waba_id.clone());
                return Ok(Page {
                    records: step,
                    next: Some(at(node, scan, last)),
                });
            }
            records.append(&mut step);
            if next == 0 {
                // This primary is walked: the next one, from its start.
                node += 1;
                if node == primaries.len() {
                    return Ok(Page {
                        records,
                        next: None,
                    });
                }
            }
            scan = next;
            if records.len() == limit {
                break;
            }
        }
        Ok(Page {
            records,
            next: Some(at(node, scan, None)),
        })
    }

    /// The records at `keys` (in that order) for which `keep` is true.
    async fn matching(
        &self,
        conn: &mut Conn,
        keys: &[String],
        keep: &(impl Fn(&TenantRecord) -> bool + Send),
    ) -> Result<Vec<TenantRecord>> {
        let hashes: Vec<HashMap<String, String>> = conn.each(hgetall_each(keys)).await?;
        let mut out = Vec::new();
        for (key, fields) in keys.iter().zip(&hashes) {
            // An empty hash: the key vanished between SCAN and HGETALL.
            if let Some(record) = TenantRecord::from_hash(key, fields)?
                && keep(&record)
            {
                out.push(record);
            }
        }
        Ok(out)
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

/// `HGETALL` of each key.
pub(crate) fn hgetall_each(keys: &[String]) -> Vec<redis::Cmd> {
    keys.iter()
        .map(|key| {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(key);
            cmd
        })
        .collect()
}
