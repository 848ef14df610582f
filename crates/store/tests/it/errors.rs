//! Which errors the worker should retry (transient) and which it should dead-letter.

use redis::AsyncCommands;
use wa_ids::{BusinessId, WabaId};
use wa_store::{Store, StoreError, TokenKey};

use crate::helpers::{TestStore, install, waba_id};

#[tokio::test]
async fn an_unreachable_redis_is_transient() {
    // Port 1 on localhost: nothing listens there.
    let err = Store::connect("redis://127.0.0.1:1/0", "wa:")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Redis(_)), "{err}");
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_key_of_the_wrong_type_is_permanent() {
    let t = TestStore::new().await;
    let () = t
        .raw()
        .await
        .set(format!("{}tenant:{{1001}}", t.prefix), "not a hash")
        .await
        .unwrap();
    let err = t.store.get(&waba_id("1001")).await.unwrap_err();
    assert!(matches!(err, StoreError::Redis(_)), "{err}");
    assert!(!err.is_transient(), "{err}");
    let err = t
        .store
        .apply_install(&install("1001", "2002", 1))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_corrupt_record_is_named_by_its_key() {
    let t = TestStore::new().await;
    let key = format!("{}tenant:{{1001}}", t.prefix);
    let () = t
        .raw()
        .await
        .hset_multiple(&key, &[("waba_id", "1001"), ("status", "??")])
        .await
        .unwrap();
    let err = t.store.get(&waba_id("1001")).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&key), "{err}");
}

#[tokio::test]
async fn bad_ids_and_prefixes_are_refused_before_touching_redis() {
    let t = TestStore::new().await;
    // An id that would break a key or its hash tag cannot even be made: the store's API
    // takes typed ids only.
    assert!(WabaId::parse("12}3").is_err());
    assert!(WabaId::parse("").is_err());
    assert!(BusinessId::parse("o").is_err());
    let err = Store::connect(&crate::helpers::redis_url(), "wa:{x}:")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert!(matches!(
        TokenKey::from_base64("c2hvcnQ="),
        Err(StoreError::BadKey(_))
    ));
    assert!(t.keys().await.is_empty());
}
