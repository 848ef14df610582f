//! Listing every tenant by SCAN, and the owner business index.

use std::collections::HashSet;

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use serde_json::json;
use wa_store::{Status, Uninstall};

use crate::helpers::{TestStore, business_id, install, uninstall, waba_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_scans_every_tenant_exactly_once() {
    let t = TestStore::new().await;
    const N: usize = 2500;
    stream::iter(0..N)
        .map(|i| {
            let store = t.store.clone();
            async move {
                let waba = format!("{}", 100_000 + i);
                let time = i64::try_from(i).unwrap();
                store
                    .apply_install(&install(&waba, &format!("{}", 900 + i % 7), time))
                    .await?;
                if i % 10 == 0 {
                    store.apply_uninstall(&uninstall(&waba, time + 1)).await?;
                }
                if i % 13 == 0 {
                    store
                        .apply_account_event(&waba_id(&waba), "PARTNER_ADDED", &json!({}), time)
                        .await?;
                }
                Ok::<(), wa_store::StoreError>(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
        .unwrap();

    let records: Vec<_> = t.store.list().try_collect().await.unwrap();
    assert_eq!(records.len(), N);
    let ids: HashSet<_> = records.iter().map(|r| r.waba_id.clone()).collect();
    assert_eq!(ids.len(), N, "no duplicates");
    assert!((0..N).all(|i| ids.contains(format!("{}", 100_000 + i).as_str())));
    let uninstalled = records
        .iter()
        .filter(|r| r.status == Status::Uninstalled)
        .count();
    assert_eq!(uninstalled, N / 10);
}

#[tokio::test]
async fn list_is_empty_for_an_empty_prefix_and_ignores_other_keys() {
    let t = TestStore::new().await;
    assert_eq!(t.store.list().count().await, 0);
    // Token, event and index keys are not tenants.
    t.store
        .apply_install(&install("1001", "2002", 1))
        .await
        .unwrap();
    t.vault
        .store_token(&waba_id("1001"), &crate::helpers::secret("EAAG"), 2, 1)
        .await
        .unwrap();
    t.store
        .apply_account_event(&waba_id("1001"), "X", &json!({}), 3)
        .await
        .unwrap();
    let all: Vec<_> = t.store.list().try_collect().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].waba_id, "1001");
}

#[tokio::test]
async fn tenants_are_found_by_owner_business_id() {
    let t = TestStore::new().await;
    let s = &t.store;
    s.apply_install(&install("1", "7", 100)).await.unwrap();
    s.apply_install(&install("2", "7", 100)).await.unwrap();
    s.apply_install(&install("3", "8", 100)).await.unwrap();
    assert_eq!(
        s.tenants_owned_by(&business_id("7")).await.unwrap(),
        ["1", "2"]
    );
    assert_eq!(s.tenants_owned_by(&business_id("8")).await.unwrap(), ["3"]);
    assert!(
        s.tenants_owned_by(&business_id("6"))
            .await
            .unwrap()
            .is_empty()
    );

    // 2 changes hands with a newer install.
    s.apply_install(&install("2", "8", 200)).await.unwrap();
    assert_eq!(s.tenants_owned_by(&business_id("7")).await.unwrap(), ["1"]);
    assert_eq!(
        s.tenants_owned_by(&business_id("8")).await.unwrap(),
        ["2", "3"]
    );

    // A stale install naming another owner does not make it the owner.
    assert!(s.apply_install(&install("1", "8", 50)).await.unwrap().stale);
    assert_eq!(
        s.tenants_owned_by(&business_id("8")).await.unwrap(),
        ["2", "3"]
    );
    assert_eq!(s.tenants_owned_by(&business_id("7")).await.unwrap(), ["1"]);

    // Uninstalled tenants stay findable (a re-delivered uninstall without waba_info).
    s.apply_uninstall(&uninstall("1", 300)).await.unwrap();
    assert_eq!(s.tenants_owned_by(&business_id("7")).await.unwrap(), ["1"]);

    // An uninstall naming its owner indexes a WABA never seen.
    s.apply_uninstall(&Uninstall {
        waba_id: waba_id("4"),
        owner_business_id: Some(business_id("9")),
        event_time: 10,
    })
    .await
    .unwrap();
    assert_eq!(s.tenants_owned_by(&business_id("9")).await.unwrap(), ["4"]);
}
