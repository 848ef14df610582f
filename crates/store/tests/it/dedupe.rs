//! Dedupe claims: exclusive claim, done is remembered, only the holder completes or
//! releases, and an expired lease gives the change back.

use std::time::Duration;

use redis::AsyncCommands;
use wa_store::Claim;

use wa_ids::DedupeKey;

use crate::helpers::{TestStore, dedupe_key, eventually};

const KEY: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn key() -> DedupeKey {
    DedupeKey::parse(KEY).unwrap()
}
const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(8 * 24 * 3600);

#[tokio::test]
async fn claim_is_exclusive_until_done() {
    let t = TestStore::new().await;
    let Claim::Acquired(token) = t.store.claim(&key(), LEASE).await.unwrap() else {
        panic!("first claim must be acquired");
    };
    assert_eq!(
        t.store.claim(&key(), LEASE).await.unwrap(),
        Claim::InProgress
    );

    assert!(t.store.complete(&key(), &token, TTL).await.unwrap());
    assert_eq!(t.store.claim(&key(), LEASE).await.unwrap(), Claim::Done);

    // Done is remembered for the dedupe TTL.
    let ttl: i64 = t
        .raw()
        .await
        .pttl(format!("{}dedupe:{{{KEY}}}", t.prefix))
        .await
        .unwrap();
    assert!(ttl > 7 * 24 * 3600 * 1000, "pttl {ttl}");
}

#[tokio::test]
async fn an_expired_lease_gives_the_change_back() {
    let t = TestStore::new().await;
    let Claim::Acquired(dead) = t
        .store
        .claim(&key(), Duration::from_millis(100))
        .await
        .unwrap()
    else {
        panic!("first claim must be acquired");
    };
    // The holder "dies"; another worker polls until the lease has expired.
    let second = eventually(Duration::from_secs(5), || async {
        match t.store.claim(&key(), LEASE).await.unwrap() {
            Claim::Acquired(token) => Some(token),
            Claim::InProgress => None,
            Claim::Done => panic!("never completed"),
        }
    })
    .await;
    assert_ne!(dead, second);

    // The dead worker wakes up: it can neither complete nor release the new holder's claim.
    assert!(!t.store.complete(&key(), &dead, TTL).await.unwrap());
    t.store.release(&key(), &dead).await.unwrap();
    assert_eq!(
        t.store.claim(&key(), LEASE).await.unwrap(),
        Claim::InProgress
    );

    assert!(t.store.complete(&key(), &second, TTL).await.unwrap());
    assert_eq!(t.store.claim(&key(), LEASE).await.unwrap(), Claim::Done);
}

#[tokio::test]
async fn only_the_holder_completes() {
    let t = TestStore::new().await;
    let Claim::Acquired(mine) = t.store.claim(&key(), LEASE).await.unwrap() else {
        panic!("first claim must be acquired");
    };
    let Claim::Acquired(other) = t.store.claim(&dedupe_key("other"), LEASE).await.unwrap() else {
        panic!("another key is independent");
    };
    // A token from another claim is not ours.
    assert!(!t.store.complete(&key(), &other, TTL).await.unwrap());
    assert_eq!(
        t.store.claim(&key(), LEASE).await.unwrap(),
        Claim::InProgress
    );
    // Completing a key nobody claimed writes nothing.
    assert!(
        !t.store
            .complete(&dedupe_key("never-claimed"), &mine, TTL)
            .await
            .unwrap()
    );
    assert!(matches!(
        t.store
            .claim(&dedupe_key("never-claimed"), LEASE)
            .await
            .unwrap(),
        Claim::Acquired(_)
    ));
    assert!(t.store.complete(&key(), &mine, TTL).await.unwrap());
    // Completing twice: the claim is no longer ours (it is done), nothing changes.
    assert!(!t.store.complete(&key(), &mine, TTL).await.unwrap());
    assert_eq!(t.store.claim(&key(), LEASE).await.unwrap(), Claim::Done);
}

#[tokio::test]
async fn release_lets_a_redelivery_retry_at_once() {
    let t = TestStore::new().await;
    let Claim::Acquired(token) = t.store.claim(&key(), LEASE).await.unwrap() else {
        panic!("first claim must be acquired");
    };
    t.store.release(&key(), &token).await.unwrap();
    let Claim::Acquired(again) = t.store.claim(&key(), LEASE).await.unwrap() else {
        panic!("released claim must be claimable at once");
    };
    // Releasing a done key does nothing.
    assert!(t.store.complete(&key(), &again, TTL).await.unwrap());
    t.store.release(&key(), &again).await.unwrap();
    assert_eq!(t.store.claim(&key(), LEASE).await.unwrap(), Claim::Done);
}

#[tokio::test]
async fn of_many_concurrent_claims_exactly_one_wins() {
    let t = TestStore::new().await;
    let claims = futures_util::future::join_all((0..50).map(|_| {
        let store = t.store.clone();
        tokio::spawn(async move { store.claim(&key(), LEASE).await.unwrap() })
    }))
    .await;
    let won = claims
        .into_iter()
        .map(Result::unwrap)
        .filter(|c| matches!(c, Claim::Acquired(_)))
        .count();
    assert_eq!(won, 1);
}
