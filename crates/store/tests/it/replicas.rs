//! [`Store::replica_shortfall`] against the real servers: the standalone Redis (no replica)
//! and the Redis Cluster of scripts/redis-cluster.sh (one replica per master).

use wa_store::{RedisConfig, ReplicaShortfall, Store, StoreError};

use crate::helpers::*;

async fn shortfall(urls: &str, wait: Option<u16>) -> Option<ReplicaShortfall> {
    let mut config = RedisConfig::parse(urls, false).unwrap();
    if let Some(replicas) = wait {
        config = config.wait_replicas(replicas);
    }
    let store = Store::open(&config, "watest:replicas:").await.unwrap();
    store.replica_shortfall().await.unwrap()
}

#[tokio::test]
async fn one_redis_without_replicas_falls_short_only_when_writes_wait_for_one() {
    assert_eq!(shortfall(&redis_url(), None).await, None, "waits for none");
    assert_eq!(shortfall(&redis_url(), Some(0)).await, None);
    let short = shortfall(&redis_url(), Some(1)).await.expect("0 of 1");
    assert_eq!((short.connected, short.wanted), (0, 1));
    let said = short.to_string();
    assert!(
        said.contains("WA_REDIS_WAIT_REPLICAS is 1") && said.contains("has 0 replica(s) in sync"),
        "{said}"
    );
    assert!(said.contains(&redis_url()), "names the server: {said}");
}

#[tokio::test]
async fn every_master_of_the_cluster_has_the_one_replica_it_waits_for_but_not_two() {
    // The default on a cluster: one replica, which each master has.
    assert_eq!(shortfall(&redis_cluster_urls(), None).await, None);
    let short = shortfall(&redis_cluster_urls(), Some(2))
        .await
        .expect("1 of 2");
    assert_eq!((short.connected, short.wanted), (1, 2));
    let said = short.to_string();
    assert!(
        said.contains("WA_REDIS_WAIT_REPLICAS is 2") && said.contains("has 1 replica(s) in sync"),
        "{said}"
    );
    assert!(
        redis_cluster_urls()
            .split(',')
            .any(|seed| seed.ends_with(&short.primary)),
        "names a master by its address: {said}"
    );
}

#[tokio::test]
async fn a_primary_refusing_info_is_a_stated_cannot_check_not_an_outage() {
    let user = wa_testkit::RedisUserWithout::create("info").await;
    let config = RedisConfig::parse(&user.url(), false)
        .unwrap()
        .wait_replicas(1);
    let store = Store::open(&config, "watest:replicas:").await.unwrap();
    let err = store.replica_shortfall().await.unwrap_err();
    assert!(
        matches!(err, StoreError::ReplicasUnchecked { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient(), "a refusal lasts: {err:?}");
    let said = err.to_string();
    assert!(
        said.contains("cannot check WA_REDIS_WAIT_REPLICAS") && said.contains("INFO refused"),
        "{said}"
    );
    assert!(said.contains("NOPERM"), "gives the server's answer: {said}");
    assert!(
        !said.contains(wa_testkit::ACL_TEST_PASSWORD),
        "never the password: {said}"
    );
    // Waiting for no replica needs no INFO.
    let none = RedisConfig::parse(&user.url(), false)
        .unwrap()
        .wait_replicas(0);
    let store = Store::open(&none, "watest:replicas:").await.unwrap();
    assert_eq!(store.replica_shortfall().await.unwrap(), None);
}
