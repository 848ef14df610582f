//! Tenant checks that fail (wiremock for Graph): each is counted by where it went, a
//! dead-lettered one as `failed` exactly once, never also as the `retry` that sent it there.

use serde_json::json;
use wiremock::ResponseTemplate;

use crate::{graph_mock::*, helpers::*, sim::*};

fn checks(text: &str, outcome: &str) -> f64 {
    metric(
        text,
        &format!("wa_worker_tenant_checks_total{{outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test]
async fn a_check_failing_until_its_tiers_run_out_counts_each_retry_then_failed_once() {
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAbusiness-never-stored").await;
    // Graph is down for debug_token: transient, through both delay tiers of the test.
    debug_token(&env, ResponseTemplate::new(503)).await;
    seed_held(&env, "7971", "7970", "EAAbusiness-held-while-graph-is-down").await;
    env.spawn_worker().await;

    queue(&env, &["7971"]).await;
    // Nothing left to do (queues empty, nothing in progress, the letter in the DLQ): the
    // counts are final.
    env.wait_checks_idle(0, 1).await;
    let text = env.metrics(0).await;
    assert_eq!(checks(&text, "failed"), 1.0, "dead-lettered once");
    assert_eq!(
        checks(&text, "retry"),
        2.0,
        "one per delay tier, none for the DLQ"
    );
    for outcome in ["healthy", "repaired", "attention", "skipped", "busy"] {
        assert_eq!(checks(&text, outcome), 0.0, "{outcome}");
    }
    env.stop().await;
}

#[tokio::test]
async fn a_check_failing_for_good_goes_to_the_dlq_counted_failed_once() {
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAbusiness-never-stored").await;
    // The app access token is refused: permanent, straight to the dead-letter queue.
    let refused = ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "Invalid OAuth access token - Cannot parse access token",
        "type": "OAuthException", "code": 100, "fbtrace_id": "C"}}));
    debug_token(&env, refused).await;
    seed_held(&env, "7981", "7980", "EAAbusiness-held-app-token-refused").await;
    env.spawn_worker().await;

    queue(&env, &["7981"]).await;
    env.wait_checks_idle(0, 1).await;
    let text = env.metrics(0).await;
    assert_eq!(checks(&text, "failed"), 1.0);
    assert_eq!(checks(&text, "retry"), 0.0);
    env.stop().await;
}
