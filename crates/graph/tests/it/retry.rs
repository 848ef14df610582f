//! In-process retry: what is retried, how often, and how server hints bound it.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::json;
use wa_graph::{GraphClient, GraphError, RetryPolicy};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::*;

const TOKEN_PATH: &str = "/v22.0/555/system_user_access_tokens";

fn ok_token() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"access_token": "EAAbiz"}))
}

fn graph_error(status: u16, code: i64, transient: bool) -> ResponseTemplate {
    let mut error =
        json!({"message": "boom", "type": "OAuthException", "code": code, "fbtrace_id": "TRACE1"});
    if transient {
        error["is_transient"] = json!(true);
    }
    ResponseTemplate::new(status).set_body_json(json!({ "error": error }))
}

/// Mounts `first` for the first `n` requests, then `then` for every later one.
async fn sequence(server: &MockServer, first: ResponseTemplate, n: u64, then: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(first)
        .up_to_n_times(n)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(then)
        .mount(server)
        .await;
}

#[tokio::test]
async fn two_server_errors_then_success_is_ok_after_three_requests() {
    let server = MockServer::start().await;
    sequence(&server, ResponseTemplate::new(500), 2, ok_token()).await;

    let token = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect("recovered");

    assert_eq!(token.expose_secret(), "EAAbiz");
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn code_190_is_permanent_and_sent_once() {
    let server = MockServer::start().await;
    let body = fixture("graph_error_permanent.json");
    sequence(
        &server,
        ResponseTemplate::new(400).set_body_raw(body, "application/json"),
        1,
        ok_token(),
    )
    .await;

    let err = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect_err("permanent");

    assert!(!err.is_transient());
    assert_eq!(err.code(), Some(190));
    assert_eq!(err.subcode(), Some(458));
    assert_eq!(err.fbtrace_id(), Some("Z9y8X7w6V5u"));
    assert_eq!(err.retry_after(), None);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_permanent_code_wins_over_a_5xx_status() {
    let server = MockServer::start().await;
    sequence(&server, graph_error(500, 190, false), 1, ok_token()).await;

    let err = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect_err("permanent");

    assert!(!err.is_transient(), "code 190 decides even on a 500");
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn code_2_with_is_transient_is_retried_even_on_a_4xx() {
    let server = MockServer::start().await;
    let body = fixture("graph_error_transient.json");
    sequence(
        &server,
        ResponseTemplate::new(400).set_body_raw(body, "application/json"),
        1,
        ok_token(),
    )
    .await;

    client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect("retried");

    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_budget_returns_at_once_with_the_hint() {
    let server = MockServer::start().await;
    let throttled = graph_error(429, 613, false).insert_header("Retry-After", "60");
    sequence(&server, throttled, 1, ok_token()).await;
    let started = Instant::now();

    let err = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect_err("handed back");

    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(received(&server).await.len(), 1, "no further attempt");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait for the hint"
    );
}

#[tokio::test]
async fn retry_after_within_the_budget_is_waited_for() {
    let server = MockServer::start().await;
    let throttled = ResponseTemplate::new(503).insert_header("Retry-After", "1");
    sequence(&server, throttled, 1, ok_token()).await;
    let started = Instant::now();

    client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect("retried after the hint");

    assert_eq!(received(&server).await.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the server's pause replaced our 5 ms backoff"
    );
}

#[tokio::test]
async fn business_use_case_usage_hint_is_honoured() {
    let server = MockServer::start().await;
    let usage = json!({
        "555": [
            {"type": "whatsapp_business_management", "call_count": 100, "total_cputime": 20, "total_time": 25, "estimated_time_to_regain_access": 1},
            {"type": "management", "call_count": 98, "estimated_time_to_regain_access": 2}
        ]
    });
    let throttled = graph_error(400, 80007, false)
        .insert_header("X-Business-Use-Case-Usage", usage.to_string());
    sequence(&server, throttled, 1, ok_token()).await;

    let err = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect_err("handed back");

    assert!(err.is_transient());
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(120)),
        "largest estimate, minutes to seconds"
    );
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn attempts_are_bounded_by_max_attempts() {
    let server = MockServer::start().await;
    sequence(&server, ResponseTemplate::new(503), 100, ok_token()).await;

    let err = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect_err("gave up");

    assert!(err.is_transient());
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        err.retry_after(),
        None,
        "no hint: the caller picks its delay tier"
    );
    assert_eq!(received(&server).await.len(), 4);
}

#[tokio::test]
async fn attempts_are_bounded_by_the_time_budget() {
    let server = MockServer::start().await;
    sequence(&server, ResponseTemplate::new(500), 1000, ok_token()).await;
    let mut cfg = config(&server.uri());
    cfg.retry = RetryPolicy {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(50),
        max_attempts: 1000,
        max_total: Duration::from_millis(200),
    };

    let err = GraphClient::new(cfg)
        .expect("valid")
        .fetch_business_token(&business("555"))
        .await
        .expect_err("gave up");

    assert!(err.is_transient());
    let n = received(&server).await.len();
    assert!(
        (2..=5).contains(&n),
        "{n} requests within a 200 ms budget of 50 ms pauses"
    );
}

#[tokio::test]
async fn a_reply_without_access_token_is_malformed_and_retried() {
    let server = MockServer::start().await;
    sequence(
        &server,
        ResponseTemplate::new(200).set_body_json(json!({"data": []})),
        100,
        ok_token(),
    )
    .await;

    let err = client(&server.uri())
        .fetch_business_token(&business("555"))
        .await
        .expect_err("malformed");

    assert!(matches!(err, GraphError::Malformed { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(received(&server).await.len(), 4);
}

#[tokio::test]
async fn subscribe_success_false_is_malformed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v22.0/77/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": false})))
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.retry = RetryPolicy::no_retry();

    let err = GraphClient::new(cfg)
        .expect("valid")
        .subscribe_app(&waba("77"), &secrecy::SecretString::from("tok"))
        .await
        .expect_err("malformed");

    assert!(matches!(err, GraphError::Malformed { .. }), "{err:?}");
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn connection_refused_is_a_transient_network_error_without_url() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);

    let err = client(&base)
        .fetch_business_token(&business("555"))
        .await
        .expect_err("refused");

    assert!(matches!(err, GraphError::Network { .. }), "{err:?}");
    assert!(err.is_transient());
    let text = format!("{err} {err:?} {}", err.summary());
    assert_no_secret(
        &text,
        &[
            SYSTEM_USER_TOKEN,
            &proof(APP_SECRET, SYSTEM_USER_TOKEN),
            "access_token",
            "127.0.0.1",
        ],
    );
}

#[tokio::test]
async fn a_slow_reply_times_out_as_a_network_error() {
    let server = MockServer::start().await;
    sequence(
        &server,
        ok_token().set_delay(Duration::from_secs(3)),
        1,
        ok_token(),
    )
    .await;
    let mut cfg = config(&server.uri());
    cfg.timeout = Duration::from_millis(100);
    cfg.retry = RetryPolicy::no_retry();

    let err = GraphClient::new(cfg)
        .expect("valid")
        .fetch_business_token(&business("555"))
        .await
        .expect_err("timeout");

    assert!(matches!(err, GraphError::Network { .. }), "{err:?}");
    assert!(err.is_transient());
}
