//! The census of token health against a real Redis: which tokens count as expiring and as not
//! checked.

use secrecy::SecretString;
use wa_store::{Install, TokenExpiry};

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
async fn one_replica_at_a_time_counts_and_the_others_export_no_census_gauge() {
    let mut env = spawn_env().await;
    let now = now();
    seed_token(&env, "8101", now + 86_400, now - 3600).await;
    for _ in 0..2 {
        env.spawn_worker().await;
    }

    // Five censuses of one replica while the other finds the lease taken.
    let (holder, other) = eventually(
        std::time::Duration::from_secs(15),
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
    let text = env.metrics(other).await;
    assert_eq!(runs(&env, other, "counted").await, 0.0, "{text}");
    assert!(
        !text.contains("wa_tenant_"),
        "a replica without the lease exports no census gauge:\n{text}"
    );
    let text = env.metrics(holder).await;
    assert_eq!(metric(&text, "wa_tenant_tokens_expiring "), 1.0, "{text}");
    assert_eq!(metric(&text, "wa_tenant_tokens{status=\"active\"}"), 1.0);
    let lease = env.store.census_lease_holder().await.unwrap();
    assert!(lease.is_some_and(|id| !id.is_empty()));

    // The holder stops (a rolling update): it gives the lease back, the other takes over.
    env.stop_worker(holder).await;
    eventually(
        std::time::Duration::from_secs(15),
        "the other replica counts",
        || async {
            let text = env.metrics(other).await;
            (metric(&text, "wa_tenant_tokens_expiring ") == 1.0).then_some(())
        },
    )
    .await;
    assert!(runs(&env, other, "counted").await >= 1.0);
    env.stop().await;
}
