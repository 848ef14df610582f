//! The store on the Redis Cluster of scripts/redis-cluster.sh (3 masters, 3 replicas) and on
//! its TLS Redis: every script on one slot, every scan on every master, writes waited for on
//! a replica, and a write lost by a failover re-applied once by the redelivery.

use std::collections::{BTreeSet, HashSet};

use futures_util::TryStreamExt as _;
use secrecy::ExposeSecret as _;
use serde_json::json;
use wa_store::{PagePosition, RedisConfig, Status, Store, StoreError, TokenKey, TokenStatus};
use wa_testkit::{redis_tls_ca, redis_tls_url};

use crate::helpers::*;

/// Twelve WABA ids whose hash tags fall on all three masters' slot ranges (0-5460:
/// 101, 104, 105, 108, 109, 112; 5461-10922: 102, 106, 111; 10923-16383: 103, 107, 110).
const WABAS: [&str; 12] = [
    "101", "102", "103", "104", "105", "106", "107", "108", "109", "110", "111", "112",
];

/// The masters holding at least one of `t`'s tenant keys, by port, read node by node.
async fn masters_holding_tenants(t: &TestStore) -> BTreeSet<u16> {
    let mut holding = BTreeSet::new();
    for url in redis_cluster_urls().split(',') {
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
        if !matches!(&role[0], redis::Value::BulkString(b) if b == b"master") {
            continue;
        }
        let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(format!("{}tenant:*", t.prefix))
            .arg("COUNT")
            .arg(100_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            holding.insert(
                wa_testkit::host_port(url, 0)
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
    }
    holding
}

#[tokio::test]
async fn install_token_and_uninstall_round_trip_on_every_master() {
    let t = TestStore::cluster().await;
    for (i, waba) in WABAS.iter().enumerate() {
        let owner = if i % 2 == 0 { "900" } else { "901" };
        let applied = t
            .store
            .apply_install(&install(waba, owner, 10))
            .await
            .unwrap();
        assert!(!applied.stale && applied.needs_token(), "{waba}");
        assert!(
            t.vault
                .store_token(&waba_id(waba), &secret(&format!("tok-{waba}")), 11, 10)
                .await
                .unwrap()
        );
        t.store.mark_subscribed(&waba_id(waba), 10).await.unwrap();
        t.store
            .store_phone_numbers(&waba_id(waba), &[phone_id("55")], 10)
            .await
            .unwrap();
        t.store
            .apply_account_event(&waba_id(waba), "PARTNER_ADDED", &json!({}), 12)
            .await
            .unwrap();
    }
    assert_eq!(
        masters_holding_tenants(&t).await.len(),
        3,
        "tenants on every master"
    );
    t.store
        .ping()
        .await
        .expect("the API's readiness check answers on a cluster");
    for waba in WABAS {
        let record = t.record(waba).await;
        assert_eq!(record.status, Status::Installed);
        assert_eq!(record.token.status, Some(TokenStatus::Active));
        assert!(record.subscribed);
        let token = t.vault.token(&waba_id(waba)).await.unwrap().unwrap();
        assert_eq!(token.expose_secret(), format!("tok-{waba}"));
        assert_eq!(
            t.store.account_events(&waba_id(waba)).await.unwrap().len(),
            1
        );
    }
    // The owner index lives in the owner's slot; the records it names in theirs.
    let owned = t.store.tenants_owned_by(&business_id("900")).await.unwrap();
    let expected: Vec<_> = WABAS.iter().step_by(2).map(|w| waba_id(w)).collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(owned, expected);

    for waba in WABAS {
        let applied = t.store.apply_uninstall(&uninstall(waba, 20)).await.unwrap();
        assert!(!applied.stale);
        assert!(
            t.vault.token(&waba_id(waba)).await.unwrap().is_none(),
            "{waba}"
        );
        let record = t.record(waba).await;
        assert_eq!(record.status, Status::Uninstalled);
        assert_eq!(record.token.status, Some(TokenStatus::Revoked));
    }
}

#[tokio::test]
async fn the_listing_and_every_page_see_tenants_on_every_master() {
    let t = TestStore::cluster().await;
    for waba in WABAS {
        t.store
            .apply_install(&install(waba, "900", 10))
            .await
            .unwrap();
    }
    let listed: HashSet<String> = t
        .store
        .list()
        .map_ok(|r| r.waba_id.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, WABAS.iter().map(|w| (*w).to_owned()).collect());

    // Pages of 5 walk all three masters to the end.
    let mut paged = Vec::new();
    let mut nodes = BTreeSet::new();
    let mut at = PagePosition::default();
    loop {
        let page = t.store.tenant_page(&at, 5, |_| true).await.unwrap();
        assert!(page.records.len() <= 5);
        paged.extend(page.records.into_iter().map(|r| r.waba_id.to_string()));
        match page.next {
            Some(next) => {
                nodes.insert(next.node);
                at = next;
            }
            None => break,
        }
    }
    paged.sort();
    paged.dedup();
    assert_eq!(
        paged.len(),
        WABAS.len(),
        "every tenant, across masters: {paged:?}"
    );
    assert!(
        nodes.contains(&2),
        "pages resumed on the third master: {nodes:?}"
    );
    let beyond = PagePosition {
        node: 3,
        ..PagePosition::default()
    };
    let err = t.store.tenant_page(&beyond, 5, |_| true).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
}

#[tokio::test]
async fn rekey_reencrypts_every_token_on_every_master() {
    use base64::Engine as _;
    let b64 = |k: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(k);
    let (old, new) = (rand::random::<[u8; 32]>(), rand::random::<[u8; 32]>());
    let config = RedisConfig::parse(&redis_cluster_urls(), true).unwrap();
    let old_key = TokenKey::from_base64(&b64(&old)).unwrap();
    let t = TestStore::on(config, redis_cluster_urls(), old_key).await;
    for waba in WABAS {
        t.store
            .apply_install(&install(waba, "900", 10))
            .await
            .unwrap();
        t.vault
            .store_token(&waba_id(waba), &secret(&format!("tok-{waba}")), 11, 10)
            .await
            .unwrap();
    }
    let both = TokenKey::from_base64_list(&format!("{},{}", b64(&new), b64(&old))).unwrap();
    let rotating = t.store.with_token_key(both);
    let report = rotating.rekey(|_, _| {}).await.unwrap();
    assert_eq!((report.scanned, report.rekeyed), (WABAS.len(), WABAS.len()));
    // The old key is gone: every token opens under the new one alone.
    let only_new = t
        .store
        .with_token_key(TokenKey::from_base64(&b64(&new)).unwrap());
    for waba in WABAS {
        let token = only_new.token(&waba_id(waba)).await.unwrap().unwrap();
        assert_eq!(token.expose_secret(), format!("tok-{waba}"));
    }
}

#[tokio::test]
async fn writes_load_their_scripts_wait_for_a_replica_and_say_so_when_none_holds_them() {
    let t = TestStore::cluster().await;
    // No master knows the scripts (as after a restart): the write loads them and goes on.
    let client =
        redis::cluster::ClusterClient::new(redis_cluster_urls().split(',').collect::<Vec<_>>())
            .unwrap();
    let mut raw = client.get_async_connection().await.unwrap();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    // The default on a cluster: one replica; each master of the script has one.
    t.store
        .apply_install(&install("101", "900", 10))
        .await
        .unwrap();
    // Two replicas cannot be had: the write stands on the master, and the call says it is
    // not durable yet, as a transient error the worker retries.
    let config = RedisConfig::parse(&redis_cluster_urls(), true)
        .unwrap()
        .wait_replicas(2);
    let strict = Store::open(&config, &t.prefix).await.unwrap();
    let err = strict
        .apply_install(&install("102", "900", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotReplicated {
                acked: 1,
                wanted: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_redelivery_after_a_lost_write_applies_it_once() {
    let t = TestStore::cluster().await;
    let waba = "103";
    t.store
        .apply_install(&install(waba, "900", 10))
        .await
        .unwrap();
    t.vault
        .store_token(&waba_id(waba), &secret("tok"), 11, 10)
        .await
        .unwrap();
    let before = t.record(waba).await;

    // A failover that lost the acknowledged write: the tenant and its token are gone.
    let client =
        redis::cluster::ClusterClient::new(redis_cluster_urls().split(',').collect::<Vec<_>>())
            .unwrap();
    let mut raw = client.get_async_connection().await.unwrap();
    for kind in ["tenant", "token"] {
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{}{kind}:{{{waba}}}", t.prefix))
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    // The redelivery: the install is new again and asks for its token once more.
    let again = t
        .store
        .apply_install(&install(waba, "900", 10))
        .await
        .unwrap();
    assert!(!again.stale && again.needs_token());
    t.vault
        .store_token(&waba_id(waba), &secret("tok"), 11, 10)
        .await
        .unwrap();
    assert_eq!(
        t.record(waba).await,
        before,
        "the same record as one delivery made"
    );

    // A further redelivery of the same install changes nothing and keeps the token.
    let third = t
        .store
        .apply_install(&install(waba, "900", 10))
        .await
        .unwrap();
    assert!(!third.needs_token());
    assert_eq!(t.record(waba).await, before);
    assert_eq!(
        t.store.tenants_owned_by(&business_id("900")).await.unwrap(),
        [waba_id(waba)]
    );
}

#[tokio::test]
async fn rediss_connects_with_the_given_ca_and_round_trips() {
    let ca = std::fs::read(redis_tls_ca()).expect("CA of scripts/redis-cluster.sh");
    let config = RedisConfig::parse(&redis_tls_url(), false)
        .unwrap()
        .with_ca(ca)
        .unwrap();
    let t = TestStore::on(config, redis_tls_url(), test_key()).await;
    t.store
        .apply_install(&install("7", "900", 10))
        .await
        .unwrap();
    t.vault
        .store_token(&waba_id("7"), &secret("tls-token"), 11, 10)
        .await
        .unwrap();
    let token = t.vault.token(&waba_id("7")).await.unwrap().unwrap();
    assert_eq!(token.expose_secret(), "tls-token");
    let listed: Vec<_> = t.store.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);

    // Without that CA the server's certificate is not trusted.
    let untrusted = RedisConfig::parse(&redis_tls_url(), false).unwrap();
    let err = Store::open(&untrusted, "watest:untrusted:")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Redis(_)), "{err}");
}

#[tokio::test]
async fn signups_and_business_integrations_run_on_a_cluster() {
    let t = TestStore::cluster().await;
    let hour = 1_800_000_000 / 3600 * 3600;
    // The session log, the funnel hours and the seen markers share the `{es}` tag.
    for (i, at) in [hour + 10, hour + 3600 + 10].into_iter().enumerate() {
        let ev = wa_store::SignupEvent {
            id: dedupe_key(&format!("es{i}")),
            received_at: at,
            session_ids: vec![session_id("L1")],
            counter: wa_store::SignupCounter::Finished {
                event: "FINISH".into(),
            },
            entry: json!({"id": i}),
        };
        assert!(t.store.record_signup_event(&ev).await.unwrap().counted);
    }
    assert_eq!(
        t.store
            .signup_session(&session_id("L1"))
            .await
            .unwrap()
            .len(),
        2
    );
    let funnel = t.store.signup_funnel(hour, hour + 7199).await.unwrap();
    assert_eq!(funnel.finished, 2);
    // A browser's claim, then the install, for a WABA on another master.
    t.store
        .merge_signup(&waba_id("102"), Some(&phone_id("5001")))
        .await
        .unwrap();
    t.store
        .apply_install(&install("102", "900", 100))
        .await
        .unwrap();
    assert_eq!(t.record("102").await.phone_number_ids, ["5001"]);
    // The business integration hash, in its business's slot.
    let business = business_id("900");
    assert!(
        t.store
            .record_integration(&business, wa_store::IntegrationChange::Uninstalled, 200)
            .await
            .unwrap()
    );
    assert_eq!(
        t.store.integration_uninstalled_at(&business).await.unwrap(),
        Some(200)
    );
}
