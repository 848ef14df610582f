//! Listing tenants (by `SCAN`, never `KEYS`) and the owner business index.

use std::collections::{HashMap, HashSet};

use futures_util::{Stream, StreamExt as _, TryStreamExt as _, stream};
use redis::AsyncCommands;
use wa_ids::{BusinessId, WabaId};

use crate::{Result, Store, StoreError, TenantRecord};

/// How many keys to ask `SCAN` for per step (a hint; Redis may return more or fewer).
const SCAN_COUNT: usize = 500;

/// Where a listing stands between pages.
struct Cursor {
    store: Store,
    pattern: String,
    /// The primaries to walk (see `Conn::primaries`), read at the first page.
    nodes: Option<Vec<Option<u16>>>,
    /// The index in `nodes` of the primary being walked.
    node: usize,
    cursor: u64,
    finished: bool,
    /// `SCAN` may return a key twice (while the keyspace is rehashed); each record is
    /// yielded once.
    seen: HashSet<String>,
}

impl Store {
    /// Every tenant record, in no particular order.
    ///
    /// Pages through the keyspace with `SCAN MATCH {prefix}tenant:{*} COUNT 500` and reads
    /// each page's hashes in one pipeline, so it never blocks Redis. As with any `SCAN`, a
    /// tenant created or removed during the listing may or may not appear; every tenant that
    /// exists throughout appears exactly once. On a Redis Cluster it walks every primary in
    /// turn (each key lives on exactly one).
    ///
    /// Errors are items of the stream: a Redis failure ends it after that item.
    pub fn list(&self) -> impl Stream<Item = Result<TenantRecord>> + Send + Unpin + 'static {
        let start = Cursor {
            store: self.clone(),
            pattern: self.keys.tenant_pattern(),
            nodes: None,
            node: 0,
            cursor: 0,
            finished: false,
            seen: HashSet::new(),
        };
        stream::try_unfold(start, |mut at| async move {
            if at.finished {
                return Ok::<_, crate::StoreError>(None);
            }
            let page = at.next_page().await?;
            Ok(Some((stream::iter(page.into_iter().map(Ok)), at)))
        })
        .try_flatten()
        .boxed()
    }

    /// The WABA ids whose record names `owner_business_id` as owner, sorted.
    ///
    /// Backed by the owner index, which install (and uninstall, when it carries the owner)
    /// maintain outside the atomic step; every entry is checked against the record, so a
    /// stale entry never leaks through. Uninstalled tenants stay listed: the worker needs
    /// them to resolve a re-delivered uninstall that carries no `waba_info`.
    ///
    /// # Errors
    ///
    /// [`crate::StoreError::Redis`]; [`crate::StoreError::Corrupt`] for an index entry that
    /// is not a WABA id.
    #[tracing::instrument(name = "redis tenants_owned_by", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn tenants_owned_by(&self, owner_business_id: &BusinessId) -> Result<Vec<WabaId>> {
        let mut conn = self.conn();
        let index = self.keys.owner(owner_business_id);
        let raw: Vec<String> = conn.smembers(&index).await?;
        let mut members = raw
            .into_iter()
            .map(|id| WabaId::try_from(id).map_err(|e| StoreError::corrupt(&index, e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        if members.is_empty() {
            return Ok(members);
        }
        members.sort();
        // One tenant hash per WABA, each in its own slot.
        let reads = members
            .iter()
            .map(|waba_id| {
                let mut cmd = redis::cmd("HGET");
                cmd.arg(self.keys.tenant(waba_id)).arg("owner_business_id");
                cmd
            })
            .collect();
        let owners: Vec<Option<String>> = conn.each(reads).await?;
        Ok(members
            .into_iter()
            .zip(owners)
            .filter(|(_, owner)| owner.as_deref() == Some(owner_business_id.as_str()))
            .map(|(waba_id, _)| waba_id)
            .collect())
    }
}

impl Cursor {
    /// One `SCAN` step and the records it names (those not seen before and still present).
    async fn next_page(&mut self) -> Result<Vec<TenantRecord>> {
        let mut conn = self.store.conn();
        if self.nodes.is_none() {
            self.nodes = Some(conn.primaries().await?);
        }
        let nodes = self.nodes.as_deref().unwrap_or_default();
        let mut step = redis::cmd("SCAN");
        step.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let node = nodes.get(self.node).copied().flatten();
        let (next, keys): (u64, Vec<String>) = conn.on_primary(node, step).await?;
        self.cursor = next;
        if next == 0 {
            self.node += 1;
            self.finished = self.node >= nodes.len();
        }
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| self.seen.insert(k.clone()))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<HashMap<String, String>> =
            conn.each(crate::page::hgetall_each(&keys)).await?;
        let mut records = Vec::with_capacity(keys.len());
        for (key, fields) in keys.iter().zip(&hashes) {
            // An empty hash: the key vanished between SCAN and HGETALL.
            if let Some(record) = TenantRecord::from_hash(key, fields)? {
                records.push(record);
            }
        }
        Ok(records)
    }
}
