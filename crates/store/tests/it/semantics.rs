use secrecy::ExposeSecret;
use wa_store::{Status, TokenStatus};

use crate::helpers::*;

#[tokio::test]
async fn an_install_naming_another_owner_destroys_the_old_owners_token() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2001", 100))
        .await
        .unwrap();
    assert!(
        t.vault
            .store_token(&waba_id("1001"), &secret("EAAG-owner-A"), 101, 100)
            .await
            .unwrap()
    );
    t.store
        .mark_subscribed(&waba_id("1001"), 100)
        .await
        .unwrap();

    let b = t
        .store
        .apply_install(&install("1001", "2002", 200))
        .await
        .unwrap();
    assert!(!b.stale);
    assert!(b.needs_token(), "the new owner needs its own token");
    assert!(b.needs_subscription(), "and its own subscription");
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());
    let r = t.record("1001").await;
    assert_eq!(r.owner_business_id.unwrap(), "2002");
    assert_eq!(r.token.status, Some(TokenStatus::Pending));
    assert_eq!(r.token.fetched_at, None);
}

#[tokio::test]
async fn only_the_same_installation_keeps_its_token() {
    let t = TestStore::new().await;
    let first = install("1001", "2001", 100);
    t.store.apply_install(&first).await.unwrap();
    t.vault
        .store_token(&waba_id("1001"), &secret("EAAG-1"), 101, 100)
        .await
        .unwrap();
    let again = t.store.apply_install(&first).await.unwrap();
    assert!(!again.needs_token(), "a redelivery keeps the token");
    let held = t.vault.token(&waba_id("1001")).await.unwrap().unwrap();
    assert_eq!(held.expose_secret(), "EAAG-1");

    t.store
        .apply_uninstall(&uninstall("1001", 150))
        .await
        .unwrap();
    let reinstall = t
        .store
        .apply_install(&install("1001", "2001", 200))
        .await
        .unwrap();
    assert!(reinstall.needs_token() && reinstall.needs_subscription());
    assert_eq!(reinstall.token_status, Some(TokenStatus::Pending));

    // A later install of the same owner applied before the uninstall between them (still on
    // its way) must not keep the token that uninstall invalidated.
    t.vault
        .store_token(&waba_id("1001"), &secret("EAAG-2"), 201, 200)
        .await
        .unwrap();
    let later = t
        .store
        .apply_install(&install("1001", "2001", 300))
        .await
        .unwrap();
    assert!(
        later.needs_token() && later.needs_subscription(),
        "{later:?}"
    );
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());
    let late_uninstall = t
        .store
        .apply_uninstall(&uninstall("1001", 250))
        .await
        .unwrap();
    assert!(late_uninstall.stale, "older than the install in effect");
}

#[tokio::test]
async fn an_install_and_an_uninstall_in_one_second_are_a_tie_left_to_graph() {
    let t = TestStore::new().await;
    t.store
        .apply_uninstall(&uninstall("1001", 100))
        .await
        .unwrap();
    let tied = t
        .store
        .apply_install(&install("1001", "2001", 100))
        .await
        .unwrap();
    assert!(tied.stale && tied.tie, "{tied:?}");
    assert_eq!(t.record("1001").await.status, Status::Uninstalled);
    let settled = t
        .store
        .apply_install_at_tie(&install("1001", "2001", 100))
        .await
        .unwrap();
    assert!(!settled.stale && settled.needs_token());
    assert_eq!(t.record("1001").await.status, Status::Installed);

    let tied = t
        .store
        .apply_uninstall_unless_tied(&uninstall("1001", 100))
        .await
        .unwrap();
    assert!(tied.stale && tied.tie);
    assert_eq!(t.record("1001").await.status, Status::Installed);
    let older = t
        .store
        .apply_uninstall_unless_tied(&uninstall("1001", 99))
        .await
        .unwrap();
    assert!(older.stale && !older.tie);
    t.store
        .apply_uninstall(&uninstall("1001", 100))
        .await
        .unwrap();
    assert_eq!(t.record("1001").await.status, Status::Uninstalled);
}

#[tokio::test]
async fn graphs_phone_numbers_replace_claims_and_claims_never_change_them() {
    let t = TestStore::new().await;
    t.store
        .merge_signup(&waba_id("1001"), Some(&phone_id("5001")))
        .await
        .unwrap();
    t.store
        .apply_install(&install("1001", "2001", 100))
        .await
        .unwrap();
    let r = t.record("1001").await;
    assert_eq!(r.phone_number_ids, ["5001"]);
    assert!(!r.phone_numbers_verified);

    let verified = [phone_id("7001"), phone_id("7002")];
    assert!(
        !t.store
            .store_phone_numbers(&waba_id("1001"), &verified, 99)
            .await
            .unwrap(),
        "read for another install: not recorded"
    );
    assert!(
        t.store
            .store_phone_numbers(&waba_id("1001"), &verified, 100)
            .await
            .unwrap()
    );
    let m = t
        .store
        .merge_signup(&waba_id("1001"), Some(&phone_id("5002")))
        .await
        .unwrap();
    assert!(!m.added);
    let r = t.record("1001").await;
    assert_eq!(r.phone_number_ids, ["7001", "7002"]);
    assert!(r.phone_numbers_verified);
}
