use base64::Engine;
use secrecy::ExposeSecret;
use wa_store::{Rekeyed, TokenKey};

use crate::helpers::*;

fn b64(bytes: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn rekey_moves_every_token_to_the_new_key_without_a_moment_unreadable() {
    let (old, new) = (rand::random::<[u8; 32]>(), rand::random::<[u8; 32]>());
    let t = TestStore::with_key(TokenKey::from_base64(&b64(&old)).unwrap()).await;
    for waba in ["1", "2", "3"] {
        t.store
            .apply_install(&install(waba, "9", 10))
            .await
            .unwrap();
        assert!(
            t.vault
                .store_token(&waba_id(waba), &secret(&format!("token-{waba}")), 11, 10)
                .await
                .unwrap()
        );
    }
    // Rotation, step 1: the new key encrypts, the old one still decrypts.
    let both = TokenKey::from_base64_list(&format!("{}, {}", b64(&new), b64(&old))).unwrap();
    let rotating = t.sibling(both).await;
    assert_eq!(
        rotating
            .token(&waba_id("2"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "token-2"
    );

    let mut seen = Vec::new();
    let report = rotating
        .rekey(|done, total| seen.push((done, total)))
        .await
        .unwrap();
    assert_eq!(
        report,
        Rekeyed {
            scanned: 3,
            rekeyed: 3,
            current: 0,
            raced: 0
        }
    );
    assert_eq!(seen, [(1, 3), (2, 3), (3, 3)]);

    // Step 2: the old key can go.
    let only_new = t.sibling(TokenKey::from_base64(&b64(&new)).unwrap()).await;
    for waba in ["1", "2", "3"] {
        assert_eq!(
            only_new
                .token(&waba_id(waba))
                .await
                .unwrap()
                .unwrap()
                .expose_secret(),
            format!("token-{waba}")
        );
    }
    assert!(
        t.vault.token(&waba_id("1")).await.is_err(),
        "the old key alone no longer reads them"
    );
    // Running it again changes nothing.
    let again = rotating.rekey(|_, _| {}).await.unwrap();
    assert_eq!(
        again,
        Rekeyed {
            scanned: 3,
            rekeyed: 0,
            current: 3,
            raced: 0
        }
    );
    assert!(!t.dump().await.contains("token-1"), "never plaintext");
}

#[test]
fn a_key_list_names_the_bad_entry_without_echoing_it() {
    let good = b64(&[7; 32]);
    let err = TokenKey::from_base64_list(&format!("{good},not-base64!"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("key 2"), "{err}");
    assert!(!err.contains("not-base64!"), "{err}");
    assert!(TokenKey::from_base64_list(" , ").is_err());
    let key = TokenKey::from_base64_list(&good).unwrap();
    assert_eq!(key.ids().len(), 1);
}
