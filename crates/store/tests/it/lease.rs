//! The census lease: one holder at a time, renewed by its holder only, given back, run out,
//! and on a Redis Cluster; the census only its holder publishes.

use std::time::Duration;

use wa_store::{Attention, Census, Store, StoreError, TokenStatus};

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

fn census(active: i64) -> Census {
    Census {
        counted_at: 1_700_000_000,
        tokens: vec![(TokenStatus::Active, active)],
        expiring: 1,
        expiring_unchecked: 0,
        attention: vec![(Attention::TokenExpiring, 1)],
    }
}

/// What the holder publishes is what every replica reads back; a replica that lost the
/// lease (or never had it) publishes nothing, and publishing renews the holder's lease.
async fn only_the_holder_publishes(store: &Store) {
    assert_eq!(store.census().await.unwrap(), None, "no census yet");
    assert!(
        !store
            .publish_census("replica-a", MINUTE, &census(1))
            .await
            .unwrap(),
        "no lease, no census"
    );
    assert!(store.hold_census_lease("replica-a", MINUTE).await.unwrap());
    assert!(
        store
            .publish_census("replica-a", MINUTE, &census(2))
            .await
            .unwrap()
    );
    assert_eq!(store.census().await.unwrap(), Some(census(2)));
    assert!(
        !store
            .publish_census("replica-b", MINUTE, &census(3))
            .await
            .unwrap(),
        "another replica's count is refused while the lease is held"
    );
    assert!(store.release_census_lease("replica-a").await.unwrap());
    assert!(
        !store
            .publish_census("replica-a", MINUTE, &census(4))
            .await
            .unwrap(),
        "a count finished after the lease was lost is never published"
    );
    assert_eq!(store.census().await.unwrap(), Some(census(2)));
}

#[tokio::test]
async fn only_the_census_lease_holder_publishes_the_census_every_replica_reads() {
    let t = TestStore::new().await;
    only_the_holder_publishes(&t.store).await;
}

#[tokio::test]
async fn the_census_and_its_lease_share_a_slot_on_a_redis_cluster() {
    let t = TestStore::cluster().await;
    only_the_holder_publishes(&t.store).await;
}

#[tokio::test]
async fn publishing_the_census_renews_the_lease() {
    let t = TestStore::new().await;
    let short = Duration::from_millis(300);
    assert!(t.store.hold_census_lease("replica-a", short).await.unwrap());
    assert!(
        t.store
            .publish_census("replica-a", MINUTE, &census(1))
            .await
            .unwrap()
    );
    let key = format!("{}lease:{{census}}", t.prefix);
    let ttl: i64 = redis::AsyncCommands::pttl(&mut t.raw().await, &key)
        .await
        .unwrap();
    assert!(ttl > 1000, "renewed for a minute, {ttl} ms left");
}

#[tokio::test]
async fn a_census_not_written_by_the_store_is_corrupt() {
    let t = TestStore::new().await;
    let key = format!("{}census:{{census}}", t.prefix);
    let () = redis::AsyncCommands::set(&mut t.raw().await, &key, "{]")
        .await
        .unwrap();
    let err = t.store.census().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}
