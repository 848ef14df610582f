use std::time::Duration;

use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::helpers::*;

const TOKEN: &str = "business-token-failure-tests";

fn token_path() -> wiremock::matchers::PathRegexMatcher {
    path_regex(r"/system_user_access_tokens$")
}

#[tokio::test]
async fn two_server_errors_then_success_end_active() {
    let mut env = spawn_env().await;
    Mock::given(method("POST"))
        .and(token_path())
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"message": "oops", "code": 1}})),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&env.graph)
        .await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("1", "2", 100)).await;
    env.wait_tenant("1", "active", |t| token_status(t) == Some("active"))
        .await;
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 3);
    env.stop().await;
}

#[tokio::test]
async fn transient_errors_beyond_the_budget_go_through_the_delay_tiers_then_succeed() {
    let mut env = spawn_env().await;
    // Five failures: more than one in-process budget (3 attempts), fewer than budget + tiers.
    Mock::given(method("POST"))
        .and(token_path())
        .respond_with(
            ResponseTemplate::new(503).set_body_json(
                json!({"error": {"message": "down", "code": 2, "is_transient": true}}),
            ),
        )
        .up_to_n_times(5)
        .with_priority(1)
        .mount(&env.graph)
        .await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed("5", "6", 100)).await;
    env.wait_tenant("5", "active", |t| token_status(t) == Some("active"))
        .await;
    let metrics = env.metrics(0).await;
    assert!(
        metrics.contains("wa_worker_retries_total{tier=\"200ms\"} 1"),
        "{metrics}"
    );
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn transient_errors_that_never_end_reach_the_dlq_with_attempts_and_error() {
    let mut env = spawn_env().await;
    Mock::given(method("POST"))
        .and(token_path())
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"message": "still down", "code": 2, "fbtrace_id": "AbC"}}),
        ))
        .mount(&env.graph)
        .await;
    env.spawn_worker().await;
    env.deliver(&installed("7", "8", 100)).await;
    let letters = env.wait_dead_letters(1).await;
    assert_eq!(letters[0].attempts, 2, "both tiers used");
    let reason = letters[0].reason.clone().unwrap();
    assert!(
        reason.contains("retries exhausted") && reason.contains("still down"),
        "{reason}"
    );
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        9,
        "3 attempts x (first try + 2 tiers)"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_permanent_error_records_failed_goes_to_the_dlq_and_replay_fixes_it() {
    let mut env = spawn_env().await;
    let permanent = Mock::given(method("POST"))
        .and(token_path())
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token", "type": "OAuthException", "code": 190, "fbtrace_id": "Z9y8X7w6V5u"}})))
        .mount_as_scoped(&env.graph)
        .await;
    env.spawn_worker().await;
    env.deliver(&installed("9", "10", 100)).await;
    let t = env
        .wait_tenant("9", "failed", |t| token_status(t) == Some("failed"))
        .await;
    let error = t.token.error.clone().unwrap();
    assert!(
        error.contains("190") && error.contains("Z9y8X7w6V5u"),
        "{error}"
    );
    let letters = env.wait_dead_letters(1).await;
    assert!(letters[0].reason.as_deref().unwrap().contains("190"));
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        1,
        "permanent: no retry"
    );

    // The Graph side is fixed; the operator replays the DLQ.
    drop(permanent);
    graph_ok(&env, TOKEN).await;
    let replayed = wa_worker::dlq::replay(&env.broker, None, |_, _| {})
        .await
        .unwrap();
    assert_eq!(replayed.replayed, 1);
    let t = env
        .wait_tenant("9", "active after replay", |t| {
            token_status(t) == Some("active") && t.subscribed
        })
        .await;
    assert_eq!(t.token.error, None);
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_worker_lost_between_token_fetch_and_ack_is_completed_without_a_second_fetch() {
    let mut env = spawn_env().await;
    graph_ok_token_only(&env).await;
    // The first subscription hangs: the worker dies while it waits, token already stored.
    hang_first_subscription(&env).await;
    Mock::given(method("POST"))
        .and(path_regex(r"/subscribed_apps$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&env.graph)
        .await;
    let doomed = env.spawn_worker().await;
    env.deliver(&installed("11", "12", 100)).await;
    env.wait_tenant("11", "token stored", |t| token_status(t) == Some("active"))
        .await;
    eventually(
        Duration::from_secs(10),
        "subscription in flight",
        || async { (!env.graph_calls("/subscribed_apps").await.is_empty()).then_some(()) },
    )
    .await;
    env.kill_worker(doomed).await;

    env.spawn_worker().await;
    let t = env
        .wait_tenant("11", "subscribed by the second worker", |t| t.subscribed)
        .await;
    assert_eq!(t.status.as_str(), "installed");
    assert_eq!(token_status(&t), Some("active"));
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        1,
        "no second token fetch"
    );
    env.stop().await;
}

async fn graph_ok_token_only(env: &Env) {
    Mock::given(method("POST"))
        .and(token_path())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": TOKEN})))
        .mount(&env.graph)
        .await;
}
