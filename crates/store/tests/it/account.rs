//! Account events: per-attribute ordering, ties, unknown events kept, bounded log.

use serde_json::json;
use wa_store::{Status, TokenStatus};

use crate::helpers::{TestStore, install, waba_id};

#[tokio::test]
async fn an_older_account_event_never_overwrites_a_newer_one() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();
    let ban =
        |state: &str| json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": state}});

    let a = t
        .store
        .apply_account_event(&waba_id("1001"), "DISABLED_UPDATE", &ban("REINSTATE"), 300)
        .await;
    assert!(!a.unwrap().stale);
    let older = t
        .store
        .apply_account_event(&waba_id("1001"), "DISABLED_UPDATE", &ban("DISABLE"), 200)
        .await
        .unwrap();
    assert!(older.stale, "older ban state must be ignored");
    // Account attributes are ordered each on its own: an older event of another kind applies.
    let removed = json!({"event": "PARTNER_REMOVED"});
    let a = t
        .store
        .apply_account_event(&waba_id("1001"), "PARTNER_REMOVED", &removed, 150)
        .await
        .unwrap();
    assert!(!a.stale);
    assert_eq!(a.status, Status::Installed);
    let added = json!({"event": "PARTNER_ADDED"});
    assert!(
        t.store
            .apply_account_event(&waba_id("1001"), "PARTNER_ADDED", &added, 140)
            .await
            .unwrap()
            .stale
    );

    let r = t.record("1001").await;
    assert_eq!(r.account.ban_state.as_deref(), Some("REINSTATE"));
    assert!(r.account.partner_removed);
    assert_eq!(r.last_event_time, 300);
    // Install state is untouched.
    assert_eq!(r.status, Status::Installed);
    assert_eq!(r.token.status, Some(TokenStatus::Pending));

    // At the same second a flag's `true` wins, whatever the order.
    assert!(
        t.store
            .apply_account_event(&waba_id("1001"), "PARTNER_ADDED", &added, 150)
            .await
            .unwrap()
            .stale
    );
    assert!(t.record("1001").await.account.partner_removed);
    // A newer re-add clears it.
    t.store
        .apply_account_event(&waba_id("1001"), "PARTNER_ADDED", &added, 400)
        .await
        .unwrap();
    assert!(!t.record("1001").await.account.partner_removed);
}

#[tokio::test]
async fn every_account_attribute_is_recorded() {
    let t = TestStore::new().await;
    let s = &t.store;
    let w = &waba_id("1001");
    s.apply_account_event(
        w,
        "ACCOUNT_RESTRICTION",
        &json!({"event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION",
            "expiration": 1_730_100_000}]}),
        10,
    )
    .await
    .unwrap();
    s.apply_account_event(
        w,
        "ACCOUNT_VIOLATION",
        &json!({"event": "ACCOUNT_VIOLATION",
        "violation_info": {"violation_type": "ADULT"}}),
        11,
    )
    .await
    .unwrap();
    s.apply_account_event(
        w,
        "ACCOUNT_DELETED",
        &json!({"event": "ACCOUNT_DELETED"}),
        12,
    )
    .await
    .unwrap();
    s.apply_account_event(
        w,
        "ACCOUNT_OFFBOARDED",
        &json!({"event": "ACCOUNT_OFFBOARDED"}),
        13,
    )
    .await
    .unwrap();
    let r = s.get(w).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&r.account).unwrap(),
        json!({"ban_state": null,
            "restrictions": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION",
                "expiration": 1_730_100_000}],
            "violation": "ADULT", "partner_removed": false, "deleted": true, "offboarded": true})
    );
    s.apply_account_event(
        w,
        "ACCOUNT_RECONNECTED",
        &json!({"event": "ACCOUNT_RECONNECTED"}),
        14,
    )
    .await
    .unwrap();
    s.apply_account_event(
        w,
        "ACCOUNT_RESTRICTION",
        &json!({"restriction_info": []}),
        15,
    )
    .await
    .unwrap();
    let r = s.get(w).await.unwrap().unwrap();
    assert!(!r.account.offboarded && r.account.restrictions.is_empty());
}

#[tokio::test]
async fn an_unknown_event_is_kept_never_dropped() {
    let t = TestStore::new().await;
    let value = json!({"event": "SOMETHING_META_ADDS_NEXT_YEAR", "detail": {"x": [1, 2]}});
    let a = t
        .store
        .apply_account_event(
            &waba_id("1001"),
            "SOMETHING_META_ADDS_NEXT_YEAR",
            &value,
            500,
        )
        .await
        .unwrap();
    assert!(!a.stale);
    // Re-delivery of the same event is one log entry.
    t.store
        .apply_account_event(
            &waba_id("1001"),
            "SOMETHING_META_ADDS_NEXT_YEAR",
            &value,
            500,
        )
        .await
        .unwrap();
    let known = json!({"event": "MM_LITE_TERMS_SIGNED"});
    t.store
        .apply_account_event(&waba_id("1001"), "MM_LITE_TERMS_SIGNED", &known, 400)
        .await
        .unwrap();

    let log = t.store.account_events(&waba_id("1001")).await.unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].event, "SOMETHING_META_ADDS_NEXT_YEAR");
    assert_eq!((log[0].time, &log[0].value), (500, &value));
    assert_eq!(log[1].event, "MM_LITE_TERMS_SIGNED");

    let r = t.record("1001").await;
    assert_eq!(r.last_event_time, 500);
}

#[tokio::test]
async fn the_event_log_is_bounded_to_the_newest() {
    let t = TestStore::new().await;
    let n = i64::try_from(wa_store::EVENT_LOG_LEN).unwrap() + 20;
    for time in 1..=n {
        t.store
            .apply_account_event(&waba_id("1001"), "X", &json!({"n": time}), time)
            .await
            .unwrap();
    }
    let log = t.store.account_events(&waba_id("1001")).await.unwrap();
    assert_eq!(log.len(), wa_store::EVENT_LOG_LEN);
    assert_eq!(log.first().unwrap().time, n);
    assert_eq!(log.last().unwrap().time, 21);
}

#[tokio::test]
async fn an_account_event_first_creates_a_record_that_a_late_install_still_installs() {
    let t = TestStore::new().await;
    let a = t
        .store
        .apply_account_event(
            &waba_id("1001"),
            "PARTNER_ADDED",
            &json!({"event": "PARTNER_ADDED"}),
            200,
        )
        .await
        .unwrap();
    assert_eq!(
        (a.previous_status, a.status, a.token_status),
        (None, Status::Uninstalled, None)
    );
    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Uninstalled);
    assert_eq!(
        (r.installed_at, r.uninstalled_at, r.token.status),
        (None, None, None)
    );
    assert_eq!(r.last_event_time, 200);

    // The install happened before the account event but is delivered after it.
    let i = t
        .store
        .apply_install(&install("1001", "2002", 190))
        .await
        .unwrap();
    assert!(!i.stale && i.needs_token());
    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Installed);
    assert_eq!((r.installed_at, r.last_event_time), (Some(190), 200));
}
