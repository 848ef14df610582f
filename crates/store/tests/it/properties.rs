//! Property: any interleaving of install / uninstall events for one tenant ends in the state of
//! the newest one.
//!
//! The store's rule (`tenant.rs`, `install.lua`, `uninstall.lua`): events are ordered by
//! their `event_time` against the `status_time` of the newest install or uninstall applied.
//! An uninstall is ignored only if strictly older; an install is ignored if older, or at the
//! same second as an applied uninstall. So, whatever the arrival order, the final status is
//! that of the event with the greatest time, and when an install and an uninstall share that
//! time, `uninstalled` (uninstall wins ties). A token is stored only for the install in
//! effect (`store_token` checks status and `status_time` atomically) and an uninstall
//! destroys it, so a token exists at the end if and only if the final status is `installed`.
//!
//! Each case runs on its own key prefix against a real Redis, inside a tokio runtime,
//! either one event after the other (then checked against an exact model of the scripts,
//! including which install's token is kept) or all at once from concurrent tasks.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::{prelude::*, test_runner::TestRunner};
use secrecy::ExposeSecret;
use wa_store::{Status, Store, TokenStatus, TokenVault};

use crate::helpers::{TestStore, install, redis_url, secret, test_key, uninstall, waba_id};

const WABA: &str = "7001";

/// One delivery: install (`true`) or uninstall (`false`) at a time.
type Event = (bool, i64);

fn token_for(time: i64) -> String {
    format!("EAAG-token-of-install-at-{time}")
}

/// What a worker does with one delivery: apply it, and for an install that still needs its
/// token, store one (as if the Graph fetch answered at once).
async fn deliver(vault: &TokenVault, (is_install, time): Event) {
    let store = vault.store();
    if is_install {
        let applied = store
            .apply_install(&install(WABA, "8001", time))
            .await
            .unwrap();
        if applied.needs_token() {
            vault
                .store_token(&waba_id(WABA), &secret(&token_for(time)), time + 1, time)
                .await
                .unwrap();
        }
    } else {
        store.apply_uninstall(&uninstall(WABA, time)).await.unwrap();
    }
}

/// The scripts' rules applied in memory, for sequential delivery: `(status, status_time,
/// token)`, where `token` is the event time of the install whose token is stored.
#[derive(Debug, Default)]
struct Model {
    status: Option<Status>,
    status_time: Option<i64>,
    token: Option<i64>,
}

impl Model {
    fn apply(&mut self, (is_install, t): Event) {
        let stale = match self.status_time {
            None => false,
            Some(st) if is_install => {
                t < st || (t == st && self.status == Some(Status::Uninstalled))
            }
            Some(st) => t < st,
        };
        if stale {
            return;
        }
        let redelivery = self.status == Some(Status::Installed) && self.status_time == Some(t);
        self.status_time = Some(t);
        if is_install {
            self.status = Some(Status::Installed);
            // Only a redelivery of the install in effect keeps its token; any other install
            // (a later one of the same owner included) fetches its own.
            if !(redelivery && self.token.is_some()) {
                self.token = Some(t);
            }
        } else {
            self.status = Some(Status::Uninstalled);
            self.token = None;
        }
    }
}

/// The newest event's status: the greatest time, uninstall winning a tie.
fn expected_status(events: &[Event]) -> (Status, i64) {
    let newest = events.iter().map(|&(_, t)| t).max().unwrap();
    let uninstall_at_newest = events.iter().any(|&(i, t)| !i && t == newest);
    let status = if uninstall_at_newest {
        Status::Uninstalled
    } else {
        Status::Installed
    };
    (status, newest)
}

fn event() -> impl Strategy<Value = Event> {
    // Five distinct seconds for up to twelve events: ties are common.
    (any::<bool>(), 1_000i64..1_005)
}

/// One case on its own prefix, under the shared test store's (which removes every case's
/// keys with one scan when the test ends: a scan per case would dominate on a busy Redis).
async fn run_case(
    base: &TestStore,
    case: u64,
    events: &[Event],
    concurrent: bool,
) -> Result<(), TestCaseError> {
    let prefix = format!("{}case{case}:", base.prefix);
    let vault = Store::connect(&redis_url(), &prefix)
        .await
        .unwrap()
        .with_token_key(test_key());
    let store = vault.store();
    if concurrent {
        let tasks = events.iter().map(|&ev| {
            let vault = vault.clone();
            tokio::spawn(async move { deliver(&vault, ev).await })
        });
        for task in futures_util::future::join_all(tasks).await {
            task.unwrap();
        }
    } else {
        for &ev in events {
            deliver(&vault, ev).await;
        }
    }

    let (status, newest) = expected_status(events);
    let record = store.get(&waba_id(WABA)).await.unwrap().unwrap();
    let token = vault.token(&waba_id(WABA)).await.unwrap();
    let seen = format!("events {events:?} (concurrent: {concurrent}) gave {record:?}");
    prop_assert_eq!(record.status, status, "{}", seen);
    prop_assert_eq!(record.last_event_time, newest, "{}", seen);
    match status {
        Status::Installed => {
            prop_assert_eq!(record.installed_at, Some(newest), "{}", seen);
            prop_assert_eq!(record.uninstalled_at, None, "{}", seen);
            prop_assert_eq!(record.token.status, Some(TokenStatus::Active), "{}", seen);
            prop_assert!(token.is_some(), "installed without a token: {}", seen);
        }
        Status::Uninstalled | Status::Pending => {
            prop_assert_eq!(record.uninstalled_at, Some(newest), "{}", seen);
            prop_assert!(
                matches!(record.token.status, None | Some(TokenStatus::Revoked)),
                "{}",
                seen
            );
            prop_assert!(token.is_none(), "a token survived the uninstall: {}", seen);
            prop_assert!(!record.subscribed, "{}", seen);
        }
    }
    if !concurrent {
        // One after the other, the exact outcome is known, down to which install's token is
        // kept (only a redelivery of the install in effect keeps it).
        let mut model = Model::default();
        for &ev in events {
            model.apply(ev);
        }
        prop_assert_eq!(model.status, Some(record.status), "{}", seen);
        prop_assert_eq!(
            token.as_ref().map(|s| s.expose_secret().to_owned()),
            model.token.map(token_for),
            "{}",
            seen
        );
    }
    Ok(())
}

#[test]
fn any_interleaving_ends_in_the_newest_events_state() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let base = runtime.block_on(TestStore::new());
    let cases = AtomicU64::new(0);
    // Each case is a handful of Redis round trips: 48 of them run in well under a second.
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (prop::collection::vec(event(), 1..12), any::<bool>());
    let result = runner.run(&strategy, |(events, concurrent)| {
        let case = cases.fetch_add(1, Ordering::Relaxed);
        runtime.block_on(run_case(&base, case, &events, concurrent))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
