//! Tenant checks on the record: the token's expiry learnt at its fetch, a check's findings
//! recorded only for the install it saw, an invalid token destroyed, attention replaced, and
//! the lease that keeps two checks of one tenant apart (and whose loss refuses a check's
//! writes), and the install generation that tells a same-second reinstall apart.

use std::time::Duration;

use secrecy::ExposeSecret;
use wa_store::{Attention, CheckFindings, CheckGuard, TokenExpiry, TokenStatus};
use wa_testkit::record_check;

use crate::helpers::{TestStore, install, phone_id, secret, uninstall, waba_id};

pub(crate) fn findings(install_time: i64) -> CheckFindings {
    CheckFindings {
        install_time,
        checked_at: 5_000,
        invalid: false,
        expires_at: None,
        subscribed: None,
        attention: Vec::new(),
        phone_number_ids: None,
    }
}

/// An installed tenant `waba` (install at `time`) holding `token`, expiry learnt.
pub(crate) async fn installed(t: &TestStore, waba: &str, time: i64, token: &str) {
    t.store
        .apply_install(&install(waba, "2002", time))
        .await
        .unwrap();
    let expiry = TokenExpiry {
        expires_at: 9_000,
        checked_at: time + 1,
    };
    assert!(
        t.vault
            .store_checked_token(&waba_id(waba), &secret(token), time + 1, time, Some(expiry))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_expiry_learnt_at_the_fetch_is_on_the_record_and_a_new_install_forgets_it() {
    let t = TestStore::new().await;
    installed(&t, "3001", 100, "tok-a").await;
    let token = t.record("3001").await.token;
    assert_eq!(
        (token.expires_at, token.checked_at),
        (Some(9_000), Some(101))
    );

    t.store
        .apply_uninstall(&uninstall("3001", 200))
        .await
        .unwrap();
    t.store
        .apply_install(&install("3001", "2002", 300))
        .await
        .unwrap();
    let token = t.record("3001").await.token;
    assert_eq!((token.expires_at, token.checked_at), (None, None));
    assert_eq!(token.status, Some(TokenStatus::Pending));
}

#[tokio::test]
async fn a_check_records_its_findings_and_a_later_one_clears_them() {
    let t = TestStore::new().await;
    installed(&t, "3002", 100, "tok-b").await;
    let id = waba_id("3002");
    let found = CheckFindings {
        subscribed: Some(false),
        attention: vec![Attention::NotSubscribed, Attention::TokenExpiring],
        expires_at: Some(7_000),
        phone_number_ids: Some(vec![phone_id("106540352242922")]),
        ..findings(100)
    };
    assert!(record_check(&t.store, &id, &found).await.unwrap());
    let r = t.record("3002").await;
    assert_eq!(
        r.attention,
        [Attention::TokenExpiring, Attention::NotSubscribed]
    );
    assert!(!r.subscribed);
    assert_eq!(r.token.expires_at, Some(7_000));
    assert_eq!(r.token.checked_at, Some(5_000));
    assert!(r.phone_numbers_verified);
    assert_eq!(r.phone_number_ids, [phone_id("106540352242922")]);

    let fixed = CheckFindings {
        subscribed: Some(true),
        ..findings(100)
    };
    assert!(record_check(&t.store, &id, &fixed).await.unwrap());
    let r = t.record("3002").await;
    assert!(r.attention.is_empty() && r.subscribed);
    assert_eq!(r.token.expires_at, Some(7_000), "unchanged when not told");
}

#[tokio::test]
async fn an_invalid_token_is_destroyed_and_never_served() {
    let t = TestStore::new().await;
    installed(&t, "3003", 100, "tok-c").await;
    let id = waba_id("3003");
    let found = CheckFindings {
        invalid: true,
        attention: vec![Attention::TokenInvalid],
        ..findings(100)
    };
    assert!(record_check(&t.store, &id, &found).await.unwrap());
    let r = t.record("3003").await;
    assert_eq!(r.token.status, Some(TokenStatus::Invalid));
    assert_eq!(r.attention, [Attention::TokenInvalid]);
    assert!(t.vault.token(&id).await.unwrap().is_none());

    // A refreshed token makes it active again.
    assert!(
        t.vault
            .store_checked_token(&id, &secret("tok-d"), 6_000, 100, None)
            .await
            .unwrap()
    );
    let held = t.vault.token(&id).await.unwrap().expect("held");
    assert_eq!(held.expose_secret(), "tok-d");
    assert_eq!(
        t.record("3003").await.token.status,
        Some(TokenStatus::Active)
    );
}

#[tokio::test]
async fn a_check_never_writes_over_an_uninstall_or_a_newer_install() {
    let t = TestStore::new().await;
    installed(&t, "3004", 100, "tok-e").await;
    let id = waba_id("3004");
    t.store
        .apply_uninstall(&uninstall("3004", 200))
        .await
        .unwrap();
    let before = t.dump().await;
    let found = CheckFindings {
        subscribed: Some(true),
        attention: vec![Attention::TokenInvalid],
        invalid: true,
        ..findings(100)
    };
    assert!(!record_check(&t.store, &id, &found).await.unwrap());
    assert_eq!(
        t.dump().await,
        before,
        "an uninstalled tenant is never changed"
    );

    installed(&t, "3004", 300, "tok-f").await;
    assert!(!record_check(&t.store, &id, &found).await.unwrap());
    assert_eq!(
        t.record("3004").await.token.status,
        Some(TokenStatus::Active)
    );
}

#[tokio::test]
async fn one_check_lease_per_tenant_until_given_back_or_expired() {
    let t = TestStore::new().await;
    let id = waba_id("3005");
    let lease = t
        .store
        .lease_check(&id, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free");
    assert!(
        t.store
            .lease_check(&id, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.store
            .lease_check(&waba_id("3006"), Duration::from_secs(30))
            .await
            .unwrap()
            .is_some(),
        "another tenant is not held"
    );
    t.store.release_check(&id, &lease).await.unwrap();
    let short = t
        .store
        .lease_check(&id, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(short.is_some());
    crate::helpers::eventually(Duration::from_secs(5), "the lease expires", || async {
        t.store
            .lease_check(&id, Duration::from_secs(30))
            .await
            .unwrap()
    })
    .await;
}

/// The guard a check takes before reading the record: its lease and the install generation.
pub(crate) async fn guard(t: &TestStore, waba: &str) -> CheckGuard {
    let id = waba_id(waba);
    let lease = t.store.lease_check(&id, Duration::from_secs(30)).await;
    CheckGuard {
        install_seq: t.store.install_seq(&id).await.unwrap(),
        lease: lease.unwrap().expect("free"),
    }
}

pub(crate) fn expiry() -> TokenExpiry {
    TokenExpiry {
        expires_at: 9_500,
        checked_at: 5_000,
    }
}

/// The token now stored for `waba`, in clear.
pub(crate) async fn token(t: &TestStore, waba: &str) -> Option<String> {
    let held = t.vault.token(&waba_id(waba)).await.unwrap();
    held.map(|s| s.expose_secret().to_owned())
}

#[tokio::test]
async fn a_check_never_destroys_the_token_of_a_reinstall_at_the_same_second() {
    let t = TestStore::new().await;
    installed(&t, "3007", 100, "tok-x").await;
    let id = waba_id("3007");
    let seen = guard(&t, "3007").await;
    // While the check asks Graph about tok-x: an uninstall at the same second, then the
    // install re-applied once Graph confirmed it, which stores its own token.
    t.store
        .apply_uninstall(&uninstall("3007", 100))
        .await
        .unwrap();
    t.store
        .apply_install_at_tie(&install("3007", "2002", 100))
        .await
        .unwrap();
    assert!(
        t.vault
            .store_token(&id, &secret("tok-y"), 102, 100)
            .await
            .unwrap()
    );

    let found = CheckFindings {
        invalid: true,
        attention: vec![Attention::TokenInvalid],
        ..findings(100)
    };
    assert!(!t.store.record_checked(&id, &found, &seen).await.unwrap());
    assert!(!t.store.check_holds(&id, 100, &seen).await.unwrap());
    let refreshed = t
        .vault
        .store_refreshed_token(&id, &secret("tok-z"), 103, 100, Some(expiry()), &seen)
        .await
        .unwrap();
    assert!(!refreshed, "a refresh for the install before is refused");
    assert_eq!(token(&t, "3007").await.as_deref(), Some("tok-y"));
    let record = t.record("3007").await;
    assert_eq!(record.token.status, Some(TokenStatus::Active));
    assert!(record.attention.is_empty());
}

#[tokio::test]
async fn a_refresh_never_replaces_the_token_of_another_owner_installed_at_the_same_second() {
    let t = TestStore::new().await;
    installed(&t, "3008", 100, "tok-old-owner").await;
    let id = waba_id("3008");
    let seen = guard(&t, "3008").await;
    t.store
        .apply_install(&install("3008", "2003", 100))
        .await
        .unwrap();
    assert!(
        t.vault
            .store_token(&id, &secret("tok-new-owner"), 101, 100)
            .await
            .unwrap()
    );

    let refreshed = t
        .vault
        .store_refreshed_token(
            &id,
            &secret("tok-refreshed"),
            102,
            100,
            Some(expiry()),
            &seen,
        )
        .await
        .unwrap();
    assert!(!refreshed);
    assert_eq!(token(&t, "3008").await.as_deref(), Some("tok-new-owner"));
    assert!(
        !t.store
            .record_checked(&id, &findings(100), &seen)
            .await
            .unwrap()
    );

    // A redelivery of the install in effect is the same generation: a check goes on.
    let now = guard_after_release(&t, "3008", &seen).await;
    t.store
        .apply_install(&install("3008", "2003", 100))
        .await
        .unwrap();
    assert!(
        t.store
            .record_checked(&id, &findings(100), &now)
            .await
            .unwrap()
    );
}

/// Gives `seen`'s lease back and takes a new guard.
async fn guard_after_release(t: &TestStore, waba: &str, seen: &CheckGuard) -> CheckGuard {
    t.store
        .release_check(&waba_id(waba), &seen.lease)
        .await
        .unwrap();
    guard(t, waba).await
}

#[tokio::test]
async fn a_check_whose_lease_is_lost_writes_nothing() {
    let t = TestStore::new().await;
    installed(&t, "3009", 100, "tok-l").await;
    let id = waba_id("3009");
    let seen = guard(&t, "3009").await;
    assert!(t.store.check_holds(&id, 100, &seen).await.unwrap());
    // The lease runs out and another check takes it.
    let other = guard_after_release(&t, "3009", &seen).await;
    let before = t.dump().await;

    let found = CheckFindings {
        invalid: true,
        ..findings(100)
    };
    assert!(!t.store.check_holds(&id, 100, &seen).await.unwrap());
    assert!(!t.store.record_checked(&id, &found, &seen).await.unwrap());
    let refreshed = t
        .vault
        .store_refreshed_token(&id, &secret("tok-m"), 102, 100, Some(expiry()), &seen)
        .await
        .unwrap();
    assert!(!refreshed);
    assert_eq!(t.dump().await, before, "nothing changed");

    let stored = t
        .vault
        .store_refreshed_token(&id, &secret("tok-n"), 102, 100, Some(expiry()), &other)
        .await
        .unwrap();
    assert!(stored, "the check holding the lease stores");
    assert_eq!(token(&t, "3009").await.as_deref(), Some("tok-n"));
}
