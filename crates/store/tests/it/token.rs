//! Business tokens at rest: never plaintext in Redis, bound to their WABA, wrong key named.

use redis::AsyncCommands;
use secrecy::ExposeSecret;
use serde_json::json;
use wa_store::StoreError;

use crate::helpers::{TestStore, dedupe_key, install, secret, test_key, uninstall, waba_id};

const PLAINTEXT: &str = "EAAGm0PX4ZCpsBAPlaintextBusinessToken1234567890";

#[tokio::test]
async fn the_token_never_appears_in_plaintext_anywhere_in_redis() {
    let t = TestStore::new().await;
    for (i, waba) in ["1001", "1002", "1003"].iter().enumerate() {
        let time = 100 + i64::try_from(i).unwrap();
        let id = waba_id(waba);
        t.store
            .apply_install(&install(waba, "2002", time))
            .await
            .unwrap();
        assert!(
            t.vault
                .store_token(&id, &secret(PLAINTEXT), time + 1, time)
                .await
                .unwrap()
        );
        t.store.mark_subscribed(&id, time).await.unwrap();
        t.store
            .apply_account_event(
                &id,
                "PARTNER_ADDED",
                &json!({"event": "PARTNER_ADDED"}),
                time,
            )
            .await
            .unwrap();
    }
    t.store
        .apply_uninstall(&uninstall("1003", 500))
        .await
        .unwrap();
    // Leave claims and done markers around too.
    let wa_store::Claim::Acquired(c) = t
        .store
        .claim(&dedupe_key("k1"), std::time::Duration::from_secs(30))
        .await
        .unwrap()
    else {
        panic!("claim")
    };
    t.store
        .complete(&dedupe_key("k1"), &c, std::time::Duration::from_secs(30))
        .await
        .unwrap();

    let dump = t.dump().await;
    assert!(
        dump.contains("token:{1001}"),
        "the dump covers token keys:\n{dump}"
    );
    assert!(dump.contains("tenant:{1001}") && dump.contains("events:{1001}"));
    assert!(
        dump.contains("owner:{2002}") && dump.contains(&format!("dedupe:{{{}}}", dedupe_key("k1")))
    );
    assert!(
        !dump.contains(PLAINTEXT),
        "plaintext token found in Redis:\n{dump}"
    );
    // Not even a recognisable fragment of it.
    assert!(
        !dump.contains("Plaintext"),
        "token fragment found in Redis:\n{dump}"
    );

    // And it still decrypts.
    let token = t.vault.token(&waba_id("1001")).await.unwrap().unwrap();
    assert_eq!(token.expose_secret(), PLAINTEXT);
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_tenant_does_not_decrypt() {
    let t = TestStore::new().await;
    for waba in ["6661", "6662"] {
        t.store
            .apply_install(&install(waba, "2002", 100))
            .await
            .unwrap();
    }
    t.vault
        .store_token(&waba_id("6661"), &secret(PLAINTEXT), 101, 100)
        .await
        .unwrap();

    let mut raw = t.raw().await;
    let stolen: String = raw
        .get(format!("{}token:{{6661}}", t.prefix))
        .await
        .unwrap();
    let () = raw
        .set(format!("{}token:{{6662}}", t.prefix), &stolen)
        .await
        .unwrap();

    let err = t.vault.token(&waba_id("6662")).await.unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err}");
    assert!(!err.is_transient());
    assert!(!err.to_string().contains(PLAINTEXT));
    assert_eq!(
        t.vault
            .token(&waba_id("6661"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        PLAINTEXT
    );
}

#[tokio::test]
async fn another_token_key_is_reported_as_such() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();
    t.vault
        .store_token(&waba_id("1001"), &secret(PLAINTEXT), 101, 100)
        .await
        .unwrap();

    let other = t.sibling(test_key()).await;
    let err = other.token(&waba_id("1001")).await.unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err}");
    assert!(err.to_string().contains(&t.key.id()), "{err}");

    // The same key in another process reads it fine.
    let same = t.sibling(t.key.clone()).await;
    assert_eq!(
        same.token(&waba_id("1001"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        PLAINTEXT
    );
}

#[tokio::test]
async fn debug_output_never_shows_a_token() {
    let t = TestStore::new().await;
    let shown = format!("{:?} {:?}", t.store, secret(PLAINTEXT));
    assert!(!shown.contains(PLAINTEXT), "{shown}");
}
