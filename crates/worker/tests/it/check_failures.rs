//! Tenant checks that fail (wiremock for Graph): each is counted by where it went, a
//! dead-lettered one as `failed` exactly once, never also as the `retry` that sent it there;
//! and a refresh that fails to leave the refresh window, kept but still flagged.

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

#[tokio::test]
async fn a_new_token_that_also_expires_within_the_window_is_stored_and_stays_flagged() {
    use wiremock::{
        Mock,
        matchers::{method, path, query_param},
    };
    let mut env = spawn_env().await;
    let (old, fresh) = (
        "EAAbusiness-expires-in-an-hour",
        "EAAbusiness-expires-in-a-day",
    );
    graph_ok(&env, fresh).await;
    let now = wa_testkit::unix_now();
    for (token, expires_at) in [(old, now + 3600), (fresh, now + 24 * 3600)] {
        Mock::given(method("GET"))
            .and(path("/v22.0/debug_token"))
            .and(query_param("input_token", token))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"data": {"app_id": APP_ID, "is_valid": true, "expires_at": expires_at}}),
            ))
            .mount(&env.graph)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v22.0/7981/subscribed_apps"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"whatsapp_business_api_data": {"id": APP_ID}}]})),
        )
        .mount(&env.graph)
        .await;
    seed_held(&env, "7981", "7980", old).await;
    let tap = tap(&env).await;
    env.spawn_worker().await;

    queue(&env, &["7981"]).await;
    wait_checks(&env, 0, "attention", 1.0).await;
    let refreshed = event(&tap, "tenant.token_refreshed").await;
    assert_eq!(refreshed["tenant"]["attention"], json!(["token_expiring"]));
    // Better than the old one, so kept; but a week's window still holds it: not repaired.
    assert_eq!(held(&env, "7981").await.as_deref(), Some(fresh));
    let t = env.tenant("7981").await.unwrap();
    assert_eq!(t.attention, [wa_store::Attention::TokenExpiring]);
    assert_eq!(t.token.expires_at, Some(now + 24 * 3600));
    env.stop().await;
}
