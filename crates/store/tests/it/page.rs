//! Pages of tenants: bounded, filtered, resumable; every tenant at least once; a position on another
//! node refused; PING.

use std::collections::HashSet;

use wa_store::{PagePosition, Status, StoreError};

use crate::helpers::{TestStore, install, uninstall};

#[tokio::test]
async fn pages_resume_and_cover_every_tenant_once() {
    let t = TestStore::new().await;
    const N: usize = 700;
    for i in 0..N {
        let waba = format!("{}", 300_000 + i);
        t.store
            .apply_install(&install(&waba, "77", 10))
            .await
            .unwrap();
        if i % 3 == 0 {
            t.store
                .apply_uninstall(&uninstall(&waba, 20))
                .await
                .unwrap();
        }
    }
    for (limit, status, expected) in [
        (1, None, N),
        (13, None, N),
        (1000, None, N),
        (9, Some(Status::Uninstalled), N.div_ceil(3)),
        (50, Some(Status::Installed), N - N.div_ceil(3)),
    ] {
        let mut seen = HashSet::new();
        let mut at = PagePosition::default();
        let mut pages = 0;
        loop {
            let page = t
                .store
                .tenant_page(&at, limit, |r| status.is_none_or(|s| r.status == s))
                .await
                .unwrap();
            pages += 1;
            assert!(page.records.len() <= limit);
            for r in &page.records {
                assert!(status.is_none_or(|s| r.status == s));
                // SCAN may return a tenant twice while Redis rehashes (other tests write
                // meanwhile); what must hold is that none is missing.
                seen.insert(r.waba_id.clone());
            }
            match page.next {
                Some(next) => at = next,
                None => break,
            }
            assert!(pages < 5 * N, "the listing ends");
        }
        assert_eq!(seen.len(), expected, "limit {limit} status {status:?}");
    }
}

#[tokio::test]
async fn a_page_of_nothing_matching_still_ends() {
    let t = TestStore::new().await;
    for i in 0..50 {
        t.store
            .apply_install(&install(&format!("{}", 400_000 + i), "77", 10))
            .await
            .unwrap();
    }
    let mut at = PagePosition::default();
    loop {
        let page = t.store.tenant_page(&at, 10, |_| false).await.unwrap();
        assert!(page.records.is_empty());
        match page.next {
            Some(next) => at = next,
            None => break,
        }
    }
    // A prefix without tenants: pages (of other prefixes' keys skipped) until the end.
    let empty = TestStore::new().await;
    let mut at = PagePosition::default();
    loop {
        let page = empty.store.tenant_page(&at, 10, |_| true).await.unwrap();
        assert!(page.records.is_empty());
        match page.next {
            Some(next) => at = next,
            None => break,
        }
    }
}

#[tokio::test]
async fn another_node_is_refused_and_ping_answers() {
    let t = TestStore::new().await;
    let at = PagePosition {
        node: 1,
        ..PagePosition::default()
    };
    let err = t.store.tenant_page(&at, 10, |_| true).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    t.store.ping().await.unwrap();
}
