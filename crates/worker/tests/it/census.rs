//! The census of token health against a real Redis: which tokens count as expiring and as not
//! checked, one replica counting at a time while every replica exports the census, a crashed
//! holder's lease running out, a walk that keeps failing.

use std::time::Duration;

use secrecy::SecretString;
use wa_store::{Census, Install, TokenExpiry, TokenStatus};

use crate::helpers::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Installs `waba` straight in the store with an active token expiring at `expires_at`, last
/// checked at `checked_at`.
pub(crate) async fn seed_token(env: &Env, waba: &str, expires_at: i64, checked_at: i64) {
    let install = Install {
        waba_id: waba_id(waba),
        owner_business_id: business("8000"),
        partner_app_id: None,
        solution_id: None,
        solution_partner_business_ids: Vec::new(),
        event_time: 100,
    };
    env.store.apply_install(&install).await.expect("install");
    let token = SecretString::from(format!("EAAbusiness-census-{waba}"));
    let expiry = TokenExpiry {
        expires_at,
        checked_at,
    };
    let stored = env
        .vault
        .store_checked_token(&waba_id(waba), &token, checked_at, 100, Some(expiry))
        .await
        .expect("store");
    assert!(stored);
}

#[tokio::test]
async fn a_token_in_the_refresh_window_counts_unchecked_only_when_its_check_is_old() {
    let mut env = spawn_env().await;
    let now = now();
    // Both expire in a day, inside the 7-day refresh window of the test workers.
    seed_token(&env, "8001", now + 86_400, now - 27 * 3600).await;
    seed_token(&env, "8002", now + 86_400, now - 3600).await;
    // Outside the window, and never checked: not expiring at all.
    seed_token(&env, "8003", now + 30 * 86_400, now - 40 * 86_400).await;
    env.spawn_worker().await;

    wait_metric(&env, "wa_tenant_tokens_expiring ", 2.0).await;
    let text = env.metrics(0).await;
    assert_eq!(metric(&text, "wa_tenant_tokens_expiring "), 2.0);
    assert_eq!(metric(&text, "wa_tenant_tokens_expiring_unchecked "), 1.0);
    env.stop().await;
}

/// Worker `worker`'s census runs that ended as `outcome`.
async fn runs(env: &Env, worker: usize, outcome: &str) -> f64 {
    let series = format!("wa_worker_census_runs_total{{outcome=\"{outcome}\"}}");
    metric(&env.metrics(worker).await, &series)
}

#[tokio::test]
async fn one_replica_at_a_time_counts_and_every_replica_exports_its_census() {
    let mut env = spawn_env().await;
    let now = now();
    seed_token(&env, "8101", now + 86_400, now - 3600).await;
    for _ in 0..2 {
        env.spawn_worker().await;
    }

    // Five censuses of one replica while the other finds the lease taken.
    let (holder, other) = eventually(
        Duration::from_secs(15),
        "one replica counted 5 times",
        || async {
            for (holder, other) in [(0, 1), (1, 0)] {
                if runs(&env, holder, "counted").await >= 5.0
                    && runs(&env, other, "skipped").await >= 1.0
                {
                    return Some((holder, other));
                }
            }
            None
        },
    )
    .await;
    assert_eq!(runs(&env, other, "counted").await, 0.0);
    // The other replica shows the holder's census (read back from Redis).
    wait_census(&env, other, 1.0).await;
    for worker in [holder, other] {
        let text = env.metrics(worker).await;
        assert_eq!(metric(&text, "wa_tenant_tokens_expiring "), 1.0, "{text}");
        assert_eq!(metric(&text, "wa_tenant_tokens{status=\"active\"}"), 1.0);
        assert_eq!(metric(&text, "wa_tenant_tokens{status=\"invalid\"}"), 0.0);
    }
    let lease = env.store.census_lease_holder().await.unwrap();
    assert!(lease.is_some_and(|id| !id.is_empty()));

    // The holder stops (a rolling update): it gives the lease back, the other takes over
    // and counts a tenant installed meanwhile; its gauges never went missing.
    env.stop_worker(holder).await;
    seed_token(&env, "8102", now + 86_400, now - 3600).await;
    wait_census(&env, other, 2.0).await;
    assert!(runs(&env, other, "counted").await >= 1.0);
    env.stop().await;
}

/// Waits until worker `worker` exports `expiring` tokens in the refresh window.
async fn wait_census(env: &Env, worker: usize, expiring: f64) {
    eventually(
        Duration::from_secs(15),
        &format!("worker {worker} shows {expiring} expiring"),
        || async {
            let text = env.metrics(worker).await;
            (metric(&text, "wa_tenant_tokens_expiring ") == expiring).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_crashed_holders_lease_runs_out_and_another_replica_takes_over() {
    let mut env = spawn_env().await;
    let now = now();
    seed_token(&env, "8201", now + 86_400, now - 3600).await;
    // A replica that crashed: it held the lease and published a census, and never renews.
    let mut config = env.config();
    config.census_lease = Duration::from_secs(3);
    let crashed = "crashed-replica/0000000000000001";
    assert!(
        env.store
            .hold_census_lease(crashed, config.census_lease)
            .await
            .unwrap()
    );
    let before = Census {
        counted_at: now - 30,
        tokens: vec![(TokenStatus::Active, 7)],
        expiring: 5,
        ..Census::default()
    };
    let published = env
        .store
        .publish_census(crashed, config.census_lease, &before)
        .await
        .unwrap();
    assert!(published);
    let worker = env.spawn_worker_with(config).await;

    // While the lease runs, the worker skips and shows the crashed holder's census.
    eventually(Duration::from_secs(15), "a skipped run", || async {
        (runs(&env, worker, "skipped").await >= 1.0).then_some(())
    })
    .await;
    wait_census(&env, worker, 5.0).await;
    let text = env.metrics(worker).await;
    assert_eq!(metric(&text, "wa_tenant_tokens{status=\"active\"}"), 7.0);

    // Once it runs out, the worker takes the lease and counts.
    wait_census(&env, worker, 1.0).await;
    assert!(runs(&env, worker, "counted").await >= 1.0);
    let holder = env.store.census_lease_holder().await.unwrap();
    assert!(holder.is_some_and(|h| h != crashed));
    env.stop().await;
}

#[tokio::test]
async fn a_walk_that_keeps_failing_gives_the_lease_back_and_the_census_ages() {
    let mut env = spawn_env().await;
    let now = now();
    seed_token(&env, "8301", now + 86_400, now - 3600).await;
    let worker = env.spawn_worker().await;
    wait_census(&env, worker, 1.0).await;

    // A record the census cannot read: every walk fails from now on.
    let key = format!("{}tenant:{{8302}}", env.redis_prefix);
    let mut raw = redis::Client::open(env.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::AsyncCommands::hset_multiple(
        &mut raw,
        &key,
        &[("waba_id", "8302"), ("status", "??")],
    )
    .await
    .unwrap();
    let other = env.spawn_worker().await;

    // Each replica fails its walks in turn: the holder gives the lease back after
    // MAX_FAILED_WALKS of them, and the other takes it.
    eventually(Duration::from_secs(20), "both replicas tried", || async {
        (runs(&env, worker, "failed").await >= 3.0 && runs(&env, other, "failed").await >= 3.0)
            .then_some(())
    })
    .await;
    // The last census stays shown, and its age grows past the census interval.
    let text = env.metrics(other).await;
    assert_eq!(metric(&text, "wa_tenant_tokens_expiring "), 1.0, "{text}");
    eventually(Duration::from_secs(15), "the census ages", || async {
        (metric(&env.metrics(other).await, "wa_tenant_census_age_seconds ") >= 2.0).then_some(())
    })
    .await;
    let () = redis::AsyncCommands::del(&mut raw, &key).await.unwrap();
    env.stop().await;
}
