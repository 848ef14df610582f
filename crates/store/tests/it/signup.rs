use serde_json::json;
use wa_store::{
    IntegrationChange, SignupCounter, SignupEvent, Status, TokenStatus,
    session::{FUNNEL_LABELS, SESSION_RETENTION},
};

use crate::helpers::*;

fn event(id: &str, at: i64, sessions: &[&str], counter: SignupCounter) -> SignupEvent {
    SignupEvent {
        id: dedupe_key(id),
        received_at: at,
        session_ids: sessions.iter().map(|s| session_id(s)).collect(),
        counter,
        entry: json!({"id": id, "received_at": at}),
    }
}

fn cancelled(step: &str) -> SignupCounter {
    SignupCounter::Cancelled {
        step: step.to_owned(),
    }
}

#[tokio::test]
async fn a_finish_before_the_webhook_leaves_a_pending_record_the_install_then_applies_to() {
    let t = TestStore::new().await;
    let m = t
        .store
        .merge_signup(&waba_id("1001"), Some(&phone_id("5001")))
        .await
        .unwrap();
    assert!(m.created && m.added);
    assert_eq!(m.status, Status::Pending);
    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.phone_number_ids, ["5001"]);
    assert_eq!(r.token.status, None, "no token before the webhook");
    assert_eq!((r.installed_at, r.last_event_time), (None, 0));
    assert_eq!(r.owner_business_id, None);

    let a = t
        .store
        .apply_install(&install("1001", "2001", 100))
        .await
        .unwrap();
    assert!(!a.stale);
    assert_eq!(a.previous_status, Some(Status::Pending));
    assert!(a.needs_token());
    let r = t.record("1001").await;
    assert_eq!(r.status, Status::Installed);
    assert_eq!(r.phone_number_ids, ["5001"], "kept by the install");
    assert_eq!(r.token.status, Some(TokenStatus::Pending));
}

#[tokio::test]
async fn a_finish_after_the_webhook_adds_its_number_once_and_never_changes_the_status() {
    let t = TestStore::new().await;
    t.store
        .apply_install(&install("1002", "2002", 100))
        .await
        .unwrap();
    let m = t
        .store
        .merge_signup(&waba_id("1002"), Some(&phone_id("5002")))
        .await
        .unwrap();
    assert!(!m.created && m.added);
    assert_eq!(m.status, Status::Installed);
    let again = t
        .store
        .merge_signup(&waba_id("1002"), Some(&phone_id("5002")))
        .await
        .unwrap();
    assert!(!again.added, "idempotent");
    t.store
        .merge_signup(&waba_id("1002"), Some(&phone_id("5003")))
        .await
        .unwrap();
    t.store.merge_signup(&waba_id("1002"), None).await.unwrap();
    let r = t.record("1002").await;
    assert_eq!(r.status, Status::Installed);
    assert_eq!(r.phone_number_ids, ["5002", "5003"]);
    assert_eq!(
        r.last_event_time, 100,
        "browser events do not order anything"
    );

    // An uninstalled tenant stays uninstalled; an uninstall applies to a pending one.
    t.store
        .apply_uninstall(&uninstall("1002", 200))
        .await
        .unwrap();
    t.store
        .merge_signup(&waba_id("1002"), Some(&phone_id("5004")))
        .await
        .unwrap();
    assert_eq!(t.record("1002").await.status, Status::Uninstalled);
    t.store.merge_signup(&waba_id("1003"), None).await.unwrap();
    t.store
        .apply_uninstall(&uninstall("1003", 300))
        .await
        .unwrap();
    let r = t.record("1003").await;
    assert_eq!(r.status, Status::Uninstalled);
    assert_eq!(r.uninstalled_at, Some(300));
}

#[tokio::test]
async fn ids_that_cannot_be_stored_are_refused() {
    let t = TestStore::new().await;
    // The store takes typed ids only: what would break a key or Lua's JSON cannot be made.
    assert!(wa_ids::WabaId::parse("1{x}").is_err());
    assert!(wa_ids::PhoneNumberId::parse("5\"]").is_err());
    assert!(
        t.store.get(&waba_id("1")).await.unwrap().is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn session_events_are_logged_per_session_and_counted_once() {
    let t = TestStore::new().await;
    let hour = 1_800_000_000 / 3600 * 3600;
    let first = event("k1", hour + 10, &["L1"], cancelled("PHONE_NUMBER_SETUP"));
    let rec = t.store.record_signup_event(&first).await.unwrap();
    assert!(rec.counted && rec.started);
    let again = t.store.record_signup_event(&first).await.unwrap();
    assert!(!again.counted, "a redelivery counts nothing");
    let error = event(
        "k2",
        hour + 20,
        &["L1", "meta-session-9"],
        SignupCounter::Error {
            code: "524126".into(),
        },
    );
    let rec = t.store.record_signup_event(&error).await.unwrap();
    assert!(rec.counted && !rec.started, "same launch: same session");
    let finish = event(
        "k3",
        hour + 30,
        &[],
        SignupCounter::Finished {
            event: "FINISH".into(),
        },
    );
    assert!(t.store.record_signup_event(&finish).await.unwrap().started);

    let log = t.store.signup_session(&session_id("L1")).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["id"], "k1", "oldest first");
    assert_eq!(log[1]["id"], "k2");
    assert_eq!(
        t.store
            .signup_session(&session_id("meta-session-9"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        t.store
            .signup_session(&session_id("unknown"))
            .await
            .unwrap()
            .is_empty()
    );

    let f = t.store.signup_funnel(hour, hour + 3599).await.unwrap();
    assert_eq!(f.started, 2);
    assert_eq!(f.finished, 1);
    assert_eq!(f.cancelled_by_step["PHONE_NUMBER_SETUP"], 1);
    assert_eq!(f.errors_by_code["524126"], 1);
    let earlier = t.store.signup_funnel(hour - 7200, hour - 1).await.unwrap();
    assert_eq!((earlier.started, earlier.cancelled), (0, 0));

    // Bounded retention: every key expires.
    let mut raw = t.raw().await;
    for key in t.keys().await {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no expiry");
        if key.contains(":session:") {
            assert!(ttl <= SESSION_RETENTION.as_secs() as i64, "{key}: {ttl}");
        }
    }
}

#[tokio::test]
async fn the_labels_of_one_hour_are_bounded() {
    let t = TestStore::new().await;
    let at = 1_800_003_600;
    let n = FUNNEL_LABELS + 4;
    for i in 0..n {
        let ev = event(&format!("k{i}"), at, &[], cancelled(&format!("STEP_{i}")));
        t.store.record_signup_event(&ev).await.unwrap();
    }
    let f = t.store.signup_funnel(at, at).await.unwrap();
    assert_eq!(f.cancelled, n as u64, "every cancel counted");
    assert!(
        f.cancelled_by_step.len() <= FUNNEL_LABELS,
        "{}",
        f.cancelled_by_step.len()
    );
    assert!(f.cancelled_by_step["OTHER"] >= 4);
    assert!(t.store.signup_funnel(at, at - 1).await.is_err());
}

#[tokio::test]
async fn integration_times_keep_the_newest() {
    let t = TestStore::new().await;
    let s = &t.store;
    assert_eq!(
        s.integration_uninstalled_at(&business_id("9"))
            .await
            .unwrap(),
        None
    );
    assert!(
        s.record_integration(&business_id("9"), IntegrationChange::Uninstalled, 200)
            .await
            .unwrap()
    );
    assert!(
        !s.record_integration(&business_id("9"), IntegrationChange::Uninstalled, 100)
            .await
            .unwrap()
    );
    assert!(
        !s.record_integration(&business_id("9"), IntegrationChange::Uninstalled, 200)
            .await
            .unwrap()
    );
    assert!(
        s.record_integration(&business_id("9"), IntegrationChange::Installed, 150)
            .await
            .unwrap()
    );
    assert_eq!(
        s.integration_uninstalled_at(&business_id("9"))
            .await
            .unwrap(),
        Some(200)
    );
    assert_eq!(
        s.integration_installed_at(&business_id("9")).await.unwrap(),
        Some(150)
    );
}
