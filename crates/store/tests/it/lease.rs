//! The census lease: one holder at a time, renewed by its holder only, given back, run out,
//! and on a Redis Cluster.

use std::time::Duration;

use wa_store::{Store, StoreError};

use crate::helpers::*;

const MINUTE: Duration = Duration::from_secs(60);

/// What two replicas see of one lease, in turn: one takes it, the other waits until it is
/// given back.
async fn one_holder_at_a_time(store: &Store) {
    assert!(store.hold_census_lease("replica-a", MINUTE).await.unwrap());
    assert!(!store.hold_census_lease("replica-b", MINUTE).await.unwrap());
    assert!(
        store.hold_census_lease("replica-a", MINUTE).await.unwrap(),
        "the holder renews"
    );
    assert_eq!(
        store.census_lease_holder().await.unwrap().as_deref(),
        Some("replica-a")
    );
    assert!(
        !store.release_census_lease("replica-b").await.unwrap(),
        "only the holder gives it back"
    );
    assert!(!store.hold_census_lease("replica-b", MINUTE).await.unwrap());
    assert!(store.release_census_lease("replica-a").await.unwrap());
    assert!(store.hold_census_lease("replica-b", MINUTE).await.unwrap());
    assert!(!store.hold_census_lease("replica-a", MINUTE).await.unwrap());
}

#[tokio::test]
async fn one_replica_holds_the_census_lease_until_it_gives_it_back() {
    let t = TestStore::new().await;
    one_holder_at_a_time(&t.store).await;
}

#[tokio::test]
async fn the_census_lease_is_one_key_on_a_redis_cluster() {
    let t = TestStore::cluster().await;
    one_holder_at_a_time(&t.store).await;
}

#[tokio::test]
async fn a_lease_not_renewed_runs_out_and_another_replica_takes_it() {
    let t = TestStore::new().await;
    let ttl = Duration::from_millis(50);
    assert!(t.store.hold_census_lease("crashed", ttl).await.unwrap());
    eventually(Duration::from_secs(5), "lease run out", || async {
        t.store
            .hold_census_lease("replica-b", MINUTE)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    assert_eq!(
        t.store.census_lease_holder().await.unwrap().as_deref(),
        Some("replica-b")
    );
}

#[tokio::test]
async fn a_holder_id_is_bounded() {
    let t = TestStore::new().await;
    for holder in [String::new(), "x".repeat(wa_store::MAX_HOLDER_LEN + 1)] {
        let refused = t.store.hold_census_lease(&holder, MINUTE).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidInput { .. })),
            "{refused:?}"
        );
    }
}
