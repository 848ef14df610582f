//! Concurrent, shuffled, duplicated deliveries of one tenant's events converge on the
//! newest event's state.

use rand::seq::SliceRandom as _;
use wa_store::{Status, TokenStatus};

use crate::helpers::{TestStore, install, secret, uninstall, waba_id};

/// One delivery: install (true) or uninstall (false) at a time.
type Delivery = (bool, i64);

async fn deliver_all_at_once(t: &TestStore, waba: &str, deliveries: &[Delivery]) {
    let tasks = deliveries.iter().map(|&(is_install, time)| {
        let store = t.store.clone();
        let vault = t.vault.clone();
        let waba = waba.to_owned();
        tokio::spawn(async move {
            if is_install {
                let a = store
                    .apply_install(&install(&waba, "7", time))
                    .await
                    .unwrap();
                if a.needs_token() {
                    // Some workers get as far as storing a token; it must not survive a newer
                    // uninstall.
                    vault
                        .store_token(&waba_id(&waba), &secret("EAAG-race"), time, time)
                        .await
                        .unwrap();
                }
            } else {
                store
                    .apply_uninstall(&uninstall(&waba, time))
                    .await
                    .unwrap();
            }
        })
    });
    for task in futures_util::future::join_all(tasks).await {
        task.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_interleavings_end_in_the_newest_events_state() {
    let t = TestStore::new().await;
    let mut rng = rand::rng();
    for round in 0..30 {
        let waba = format!("{}", 1_000 + round);
        // 20 deliveries at distinct times, kinds random, the newest alternating by round.
        let mut deliveries: Vec<Delivery> = (1..=20)
            .map(|time| (rand::random::<bool>(), 1_000 + time))
            .collect();
        deliveries[19].0 = round % 2 == 0;
        // Meta re-delivers some of them.
        let dupes: Vec<Delivery> = deliveries.iter().step_by(3).copied().collect();
        deliveries.extend(dupes);
        deliveries.shuffle(&mut rng);

        deliver_all_at_once(&t, &waba, &deliveries).await;

        let r = t.store.get(&waba_id(&waba)).await.unwrap().unwrap();
        assert_eq!(r.last_event_time, 1_020, "{waba}");
        if round % 2 == 0 {
            assert_eq!(r.status, Status::Installed, "{waba}: {r:?}");
            assert_eq!(r.installed_at, Some(1_020), "{waba}");
            assert_eq!(r.uninstalled_at, None, "{waba}");
            assert!(matches!(
                r.token.status,
                Some(TokenStatus::Pending | TokenStatus::Active)
            ));
        } else {
            assert_eq!(r.status, Status::Uninstalled, "{waba}: {r:?}");
            assert_eq!(r.uninstalled_at, Some(1_020), "{waba}");
            assert!(
                t.vault.token(&waba_id(&waba)).await.unwrap().is_none(),
                "{waba}"
            );
            assert!(matches!(r.token.status, None | Some(TokenStatus::Revoked)));
            assert!(!r.subscribed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_ties_at_the_newest_second_go_to_the_uninstall() {
    let t = TestStore::new().await;
    let mut rng = rand::rng();
    for round in 0..10 {
        let waba = format!("{}", 2_000 + round);
        let mut deliveries: Vec<Delivery> = (0..10).map(|_| (true, 500)).collect();
        deliveries.extend((0..10).map(|_| (false, 500)));
        deliveries.extend((0..5).map(|i| (i % 2 == 0, 400 + i)));
        deliveries.shuffle(&mut rng);
        deliver_all_at_once(&t, &waba, &deliveries).await;
        let r = t.store.get(&waba_id(&waba)).await.unwrap().unwrap();
        assert_eq!(r.status, Status::Uninstalled, "{waba}: {r:?}");
        assert!(t.vault.token(&waba_id(&waba)).await.unwrap().is_none());
    }
}
