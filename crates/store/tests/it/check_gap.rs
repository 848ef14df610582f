//! The gap between a check's guard and its write: a check asks whether it still holds
//! (`check_holds`) before it publishes the event of a change, then writes. An uninstall
//! landing in between must still refuse the write, so the write itself compares, in its own
//! atomic script, what the guard compared: the install in effect, its generation, the lease.

use wa_store::{Attention, CheckFindings};

use crate::{
    check::{expiry, findings, guard, installed, token},
    helpers::{TestStore, secret, uninstall, waba_id},
};

#[tokio::test]
async fn a_check_that_passed_its_guard_writes_nothing_after_a_concurrent_uninstall() {
    let t = TestStore::new().await;
    installed(&t, "3010", 100, "tok-held").await;
    let id = waba_id("3010");
    let seen = guard(&t, "3010").await;
    assert!(t.store.check_holds(&id, 100, &seen).await.unwrap());
    // The guard passed; the event is being published. The uninstall lands now.
    t.store
        .apply_uninstall(&uninstall("3010", 200))
        .await
        .unwrap();
    let uninstalled = t.dump().await;

    let found = CheckFindings {
        invalid: true,
        subscribed: Some(true),
        attention: vec![Attention::TokenInvalid],
        ..findings(100)
    };
    assert!(!t.store.record_checked(&id, &found, &seen).await.unwrap());
    let refreshed = t
        .vault
        .store_refreshed_token(&id, &secret("tok-fresh"), 101, 100, Some(expiry()), &seen)
        .await
        .unwrap();
    assert!(!refreshed, "no token stored for an uninstalled tenant");
    assert_eq!(
        t.dump().await,
        uninstalled,
        "the tenant stays as the uninstall left it"
    );
    assert_eq!(token(&t, "3010").await, None);
    assert_eq!(t.record("3010").await.status.as_str(), "uninstalled");
}
