//! Install / uninstall ordering by event time and the token lifecycle on the record.

use redis::AsyncCommands;
use secrecy::ExposeSecret;
use serde_json::json;
use wa_ids::{AppId, SolutionId};
use wa_store::{Install, Status, TokenStatus, Uninstall};

use crate::helpers::{TestStore, business_id, install, secret, uninstall, waba_id};

#[tokio::test]
async fn install_fills_the_record() {
    let t = TestStore::new().await;
    let ev = Install {
        waba_id: waba_id("1001"),
        owner_business_id: business_id("2002"),
        partner_app_id: Some(AppId::parse("3003").unwrap()),
        solution_id: Some(SolutionId::parse("4004").unwrap()),
        solution_partner_business_ids: vec![business_id("5005"), business_id("6006")],
        event_time: 1_730_000_000,
    };
    let a = t.store.apply_install(&ev).await.unwrap();
    assert!(!a.stale);
    assert_eq!(a.previous_status, None);
    assert_eq!(a.status, Status::Installed);
    assert_eq!(a.token_status, Some(TokenStatus::Pending));
    assert!(a.needs_token());
    assert!(a.needs_subscription());

    let record = t.record("1001").await;
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({"waba_id": "1001", "owner_business_id": "2002", "status": "installed",
            "partner_app_id": "3003", "solution_id": "4004",
            "solution_partner_business_ids": ["5005", "6006"], "phone_number_ids": [],
            "phone_numbers_verified": false,
            "installed_at": 1_730_000_000, "uninstalled_at": null,
            "last_event_time": 1_730_000_000,
            "token": {"status": "pending", "fetched_at": null, "expires_at": null,
                "checked_at": null, "error": null},
            "subscribed": false, "attention": [],
            "account": {"ban_state": null, "restrictions": [], "violation": null,
                "partner_removed": false, "deleted": false, "offboarded": false}})
    );
    assert!(t.store.get(&waba_id("4242")).await.unwrap().is_none());
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_redelivered_install_resumes_where_it_stopped() {
    let t = TestStore::new().await;
    let ev = install("1001", "2002", 100);
    assert!(t.store.apply_install(&ev).await.unwrap().needs_token());
    // Crash before fetching: the redelivery still asks for the token.
    let again = t.store.apply_install(&ev).await.unwrap();
    assert!(!again.stale && again.needs_token());

    assert!(
        t.vault
            .store_token(&waba_id("1001"), &secret("EAAG-1"), 105, 100)
            .await
            .unwrap()
    );
    let again = t.store.apply_install(&ev).await.unwrap();
    assert!(!again.stale);
    assert_eq!(again.token_status, Some(TokenStatus::Active));
    assert!(!again.needs_token(), "an active token is kept");
    assert!(again.needs_subscription());
    assert_eq!(
        t.vault
            .token(&waba_id("1001"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "EAAG-1"
    );

    t.store
        .mark_subscribed(&waba_id("1001"), 100)
        .await
        .unwrap();
    let again = t.store.apply_install(&ev).await.unwrap();
    assert!(!again.needs_token() && !again.needs_subscription());
    let record = t.record("1001").await;
    assert_eq!(record.token.fetched_at, Some(105));
    assert!(record.subscribed);
}

#[tokio::test]
async fn uninstall_revokes_and_destroys_the_token() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();
    assert!(
        t.vault
            .store_token(&waba_id("1001"), &secret("EAAG-1"), 101, 100)
            .await
            .unwrap()
    );
    t.store
        .mark_subscribed(&waba_id("1001"), 100)
        .await
        .unwrap();

    let a = t
        .store
        .apply_uninstall(&uninstall("1001", 200))
        .await
        .unwrap();
    assert!(!a.stale);
    assert_eq!(a.previous_status, Some(Status::Installed));
    assert_eq!(a.status, Status::Uninstalled);
    assert_eq!(a.token_status, Some(TokenStatus::Revoked));
    assert!(!a.needs_token() && !a.needs_subscription());

    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Uninstalled);
    assert_eq!(r.installed_at, Some(100));
    assert_eq!(r.uninstalled_at, Some(200));
    assert_eq!(r.last_event_time, 200);
    assert_eq!(r.token.status, Some(TokenStatus::Revoked));
    assert!(!r.subscribed);
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());
    let exists: bool = t
        .raw()
        .await
        .exists(format!("{}token:{{1001}}", t.prefix))
        .await
        .unwrap();
    assert!(!exists, "ciphertext must be deleted");
}

#[tokio::test]
async fn an_install_older_than_the_uninstall_is_ignored() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();
    t.store
        .apply_uninstall(&uninstall("1001", 200))
        .await
        .unwrap();

    let late = t
        .store
        .apply_install(&install("1001", "2002", 150))
        .await
        .unwrap();
    assert!(late.stale);
    assert!(!late.needs_token());
    assert_eq!(late.status, Status::Uninstalled);
    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Uninstalled);
    assert_eq!(r.last_event_time, 200);
    assert_eq!(r.installed_at, Some(100));
    assert_eq!(r.token.status, Some(TokenStatus::Revoked));

    // An older uninstall after a newer install is ignored too.
    t.store
        .apply_install(&install("1001", "2002", 300))
        .await
        .unwrap();
    let late = t
        .store
        .apply_uninstall(&uninstall("1001", 250))
        .await
        .unwrap();
    assert!(late.stale);
    assert_eq!(t.record("1001").await.status, Status::Installed);
}

#[tokio::test]
async fn uninstall_of_an_unknown_waba_leaves_an_uninstalled_record() {
    let t = TestStore::new().await;
    let a = t
        .store
        .apply_uninstall(&Uninstall {
            waba_id: waba_id("1001"),
            owner_business_id: Some(business_id("2002")),
            event_time: 200,
        })
        .await
        .unwrap();
    assert!(!a.stale);
    assert_eq!(a.previous_status, None);
    assert_eq!(a.token_status, None);

    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Uninstalled);
    assert_eq!(r.owner_business_id, Some(business_id("2002")));
    assert_eq!(r.installed_at, None);
    assert_eq!(r.uninstalled_at, Some(200));
    assert_eq!(r.last_event_time, 200);
    assert_eq!(r.token.status, None);
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());

    // Its own install, arriving late, is older: ignored, and no token is fetched.
    let late = t
        .store
        .apply_install(&install("1001", "2002", 190))
        .await
        .unwrap();
    assert!(late.stale && !late.needs_token());
    assert!(
        !t.vault
            .store_token(&waba_id("1001"), &secret("EAAG"), 201, 190)
            .await
            .unwrap()
    );
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());
    assert_eq!(t.record("1001").await.status, Status::Uninstalled);
}

#[tokio::test]
async fn at_the_same_second_uninstall_wins_in_either_order() {
    let t = TestStore::new().await;
    // install, then uninstall at the same second.
    t.store
        .apply_install(&install("1", "9", 100))
        .await
        .unwrap();
    let u = t.store.apply_uninstall(&uninstall("1", 100)).await.unwrap();
    assert!(!u.stale);
    // uninstall, then install at the same second.
    t.store.apply_uninstall(&uninstall("2", 100)).await.unwrap();
    let i = t
        .store
        .apply_install(&install("2", "9", 100))
        .await
        .unwrap();
    assert!(i.stale);

    for waba in ["1", "2"] {
        let r = t.record(waba).await;
        assert_eq!(r.status, Status::Uninstalled, "{waba}");
        // And re-applying either again changes nothing.
        assert!(
            t.store
                .apply_install(&install(waba, "9", 100))
                .await
                .unwrap()
                .stale
        );
        let again = t
            .store
            .apply_uninstall(&uninstall(waba, 100))
            .await
            .unwrap();
        assert_eq!(again.status, Status::Uninstalled);
        assert_eq!(t.record(waba).await, r);
    }
}

#[tokio::test]
async fn reinstall_after_uninstall_starts_a_new_token_cycle() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();
    t.vault
        .store_token(&waba_id("1001"), &secret("old"), 101, 100)
        .await
        .unwrap();
    t.store
        .apply_uninstall(&uninstall("1001", 200))
        .await
        .unwrap();
    let a = t
        .store
        .apply_install(&install("1001", "2002", 300))
        .await
        .unwrap();
    assert!(!a.stale);
    assert_eq!(a.previous_status, Some(Status::Uninstalled));
    assert!(a.needs_token() && a.needs_subscription());
    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Installed);
    assert_eq!((r.installed_at, r.uninstalled_at), (Some(300), None));
    assert_eq!(r.token.status, Some(TokenStatus::Pending));
    assert_eq!(r.token.fetched_at, None);
}

#[tokio::test]
async fn store_token_is_refused_once_uninstalled() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();
    // The fetch is in flight when the uninstall lands.
    t.store
        .apply_uninstall(&uninstall("1001", 200))
        .await
        .unwrap();
    assert!(
        !t.vault
            .store_token(&waba_id("1001"), &secret("EAAG-late"), 201, 100)
            .await
            .unwrap()
    );
    assert!(t.vault.token(&waba_id("1001")).await.unwrap().is_none());
    let r = t.record("1001").await;
    assert_eq!(r.token.status, Some(TokenStatus::Revoked));
    // Nor is it stored for a WABA never seen.
    assert!(
        !t.vault
            .store_token(&waba_id("9999"), &secret("EAAG"), 1, 0)
            .await
            .unwrap()
    );
    assert!(t.store.get(&waba_id("9999")).await.unwrap().is_none());
    // Subscription is not recorded either.
    t.store
        .mark_subscribed(&waba_id("1001"), 100)
        .await
        .unwrap();
    assert!(!t.record("1001").await.subscribed);
}

#[tokio::test]
async fn a_failed_fetch_is_recorded_and_a_replayed_install_retries_it() {
    let t = TestStore::new().await;
    let ev = install("1001", "2002", 100);
    t.store.apply_install(&ev).await.unwrap();
    t.store
        .mark_token_failed(&waba_id("1001"), "(#190) Invalid OAuth access token", 100)
        .await
        .unwrap();
    let r = t.record("1001").await;
    assert_eq!(r.token.status, Some(TokenStatus::Failed));
    assert_eq!(
        r.token.error.as_deref(),
        Some("(#190) Invalid OAuth access token")
    );

    // `dlq replay` re-drives the install: back to pending, error cleared.
    let a = t.store.apply_install(&ev).await.unwrap();
    assert!(a.needs_token());
    let r = t.record("1001").await;
    assert_eq!(
        (r.token.status, r.token.error),
        (Some(TokenStatus::Pending), None)
    );

    // A late failure report does not downgrade an active token.
    t.vault
        .store_token(&waba_id("1001"), &secret("EAAG"), 110, 100)
        .await
        .unwrap();
    t.store
        .mark_token_failed(&waba_id("1001"), "late", 100)
        .await
        .unwrap();
    let r = t.record("1001").await;
    assert_eq!(
        (r.token.status, r.token.error),
        (Some(TokenStatus::Active), None)
    );
}

#[tokio::test]
async fn a_newer_install_replaces_the_app_fields() {
    let t = TestStore::new().await;
    let mut ev = install("1001", "2002", 100);
    ev.solution_id = Some(SolutionId::parse("4004").unwrap());
    ev.solution_partner_business_ids = vec![business_id("5005")];
    t.store.apply_install(&ev).await.unwrap();
    let mut newer = install("1001", "2002", 200);
    newer.partner_app_id = Some(AppId::parse("1061231232323118").unwrap());
    t.store.apply_install(&newer).await.unwrap();
    let r = t.record("1001").await;
    assert_eq!(r.partner_app_id.unwrap(), "1061231232323118");
    assert_eq!(r.solution_id, None);
    assert!(r.solution_partner_business_ids.is_empty());
    assert_eq!((r.installed_at, r.last_event_time), (Some(200), 200));
}

#[tokio::test]
async fn a_fetch_for_an_install_no_longer_in_effect_changes_nothing() {
    let t = TestStore::new().await;
    // Install at 10 starts a slow token fetch; meanwhile an uninstall at 20 and a re-install
    // at 30 are applied, and the re-install stores its own token.
    t.store
        .apply_install(&install("1001", "2002", 10))
        .await
        .unwrap();
    t.store
        .apply_uninstall(&uninstall("1001", 20))
        .await
        .unwrap();
    assert!(
        t.store
            .apply_install(&install("1001", "2002", 30))
            .await
            .unwrap()
            .needs_token()
    );
    assert!(
        t.vault
            .store_token(&waba_id("1001"), &secret("T2"), 31, 30)
            .await
            .unwrap()
    );
    let before = t.record("1001").await;
    assert_eq!(before.token.status, Some(TokenStatus::Active));
    assert_eq!(before.token.fetched_at, Some(31));
    assert!(!before.subscribed);

    // The install-at-10 fetch returns now, with a token that is no longer valid.
    assert!(
        !t.vault
            .store_token(&waba_id("1001"), &secret("T1"), 35, 10)
            .await
            .unwrap(),
        "a token fetched for an install no longer in effect must not be stored"
    );
    assert_eq!(
        t.vault
            .token(&waba_id("1001"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "T2"
    );
    // Nor may its failure or its subscription be recorded against the install at 30.
    t.store
        .mark_token_failed(&waba_id("1001"), "(#190) Invalid OAuth access token", 10)
        .await
        .unwrap();
    t.store.mark_subscribed(&waba_id("1001"), 10).await.unwrap();
    // The uninstall's time, though it once was `status_time`, does not name an install.
    assert!(
        !t.vault
            .store_token(&waba_id("1001"), &secret("T1"), 35, 20)
            .await
            .unwrap()
    );
    assert_eq!(t.record("1001").await, before);
    assert_eq!(
        t.vault
            .token(&waba_id("1001"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "T2"
    );

    // The install in effect still records its own subscription.
    t.store.mark_subscribed(&waba_id("1001"), 30).await.unwrap();
    assert!(t.record("1001").await.subscribed);
}

#[tokio::test]
async fn a_failure_for_an_install_no_longer_in_effect_is_not_recorded() {
    let t = TestStore::new().await;
    // The newer install's fetch is still pending when the older one reports its failure.
    t.store
        .apply_install(&install("1001", "2002", 10))
        .await
        .unwrap();
    t.store
        .apply_uninstall(&uninstall("1001", 20))
        .await
        .unwrap();
    t.store
        .apply_install(&install("1001", "2002", 30))
        .await
        .unwrap();
    t.store
        .mark_token_failed(&waba_id("1001"), "(#190) Invalid OAuth access token", 10)
        .await
        .unwrap();
    let r = t.record("1001").await;
    assert_eq!(
        (r.token.status, r.token.error),
        (Some(TokenStatus::Pending), None)
    );
    // The install in effect does record its own.
    t.store
        .mark_token_failed(&waba_id("1001"), "(#190) Invalid OAuth access token", 30)
        .await
        .unwrap();
    let r = t.record("1001").await;
    assert_eq!(r.token.status, Some(TokenStatus::Failed));
}
