//! [`Store::replica_shortfall`] against the real servers: the standalone Redis (no replica)
//! and the Redis Cluster of scripts/redis-cluster.sh (one replica per master).

use wa_store::{RedisConfig, ReplicaShortfall, Store};

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
        said.contains("WA_REDIS_WAIT_REPLICAS is 1") && said.contains("has 0 connected"),
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
        said.contains("WA_REDIS_WAIT_REPLICAS is 2") && said.contains("has 1 connected"),
        "{said}"
    );
    assert!(
        redis_cluster_urls()
            .split(',')
            .any(|seed| seed.ends_with(&short.primary)),
        "names a master by its address: {said}"
    );
}
