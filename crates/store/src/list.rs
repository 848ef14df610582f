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
    /// exists throughout appears exactly once. (On Redis Cluster this lists the node the
    /// connection points at; a cluster-wide listing would scan every primary.)
    ///
    /// Errors are items of the stream: a Redis failure ends it after that item.
    pub fn list(&self) -> impl Stream<Item = Result<TenantRecord>> + Send + Unpin + 'static {
        let start = Cursor {
            store: self.clone(),
            pattern: self.keys.tenant_pattern(),
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
        let mut pipe = redis::pipe();
        for waba_id in &members {
            pipe.hget(self.keys.tenant(waba_id), "owner_business_id");
        }
        let owners: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
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
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut conn)
            .await?;
        self.cursor = next;
        self.finished = next == 0;
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| self.seen.insert(k.clone()))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hgetall(key);
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
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
