//! The exact requests both calls send, and how their replies are read.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use wa_graph::{GraphClient, GraphError, RetryPolicy};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

use crate::helpers::*;

#[tokio::test]
async fn fetch_business_token_sends_exactly_the_documented_request() {
    let server = MockServer::start().await;
    let expected_proof = proof(APP_SECRET, SYSTEM_USER_TOKEN);
    Mock::given(method("POST"))
        .and(path("/v22.0/1234567890/system_user_access_tokens"))
        .and(header(
            "authorization",
            format!("Bearer {SYSTEM_USER_TOKEN}").as_str(),
        ))
        .and(query_param("appsecret_proof", expected_proof.as_str()))
        .and(query_param("system_user_id", SYSTEM_USER_ID))
        .and(query_param("fetch_only", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("graph_token_ok.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let token = client(&server.uri())
        .fetch_business_token(&business("1234567890"))
        .await
        .expect("token");

    assert_eq!(
        token.expose_secret(),
        "EAAGm0PX4ZCpsBA-example-business-token"
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let mut pairs = query_pairs(&requests[0]);
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("appsecret_proof".to_owned(), expected_proof),
            ("fetch_only".to_owned(), "true".to_owned()),
            ("system_user_id".to_owned(), SYSTEM_USER_ID.to_owned()),
        ],
        "the documented parameters; the token travels in the header only"
    );
    assert!(requests[0].body.is_empty(), "no body");
}

#[tokio::test]
async fn subscribe_app_sends_the_business_token_as_a_bearer_with_its_proof() {
    let server = MockServer::start().await;
    let business_token = "EAAbusinesstoken-abcdef";
    let expected_proof = proof(APP_SECRET, business_token);
    Mock::given(method("POST"))
        .and(path("/v22.0/998877/subscribed_apps"))
        .and(header(
            "authorization",
            format!("Bearer {business_token}").as_str(),
        ))
        .and(query_param("appsecret_proof", expected_proof.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"success": true})),
        )
        .expect(1)
        .mount(&server)
        .await;

    client(&server.uri())
        .subscribe_app(&waba("998877"), &SecretString::from(business_token))
        .await
        .expect("subscribed");

    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let mut pairs = query_pairs(&requests[0]);
    pairs.sort();
    assert_eq!(pairs, vec![("appsecret_proof".to_owned(), expected_proof)]);
}

#[tokio::test]
async fn a_base_url_with_a_path_and_trailing_slash_keeps_its_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/graph/v22.0/42/subscribed_apps"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"success": true})),
        )
        .expect(1)
        .mount(&server)
        .await;

    client(&format!("{}/graph/", server.uri()))
        .subscribe_app(&waba("42"), &SecretString::from("tok"))
        .await
        .expect("subscribed");
}

#[tokio::test]
async fn ids_that_are_not_graph_ids_cannot_reach_a_request() {
    let server = MockServer::start().await;
    let graph = client(&server.uri());

    // The client takes typed ids: what could leave its path segment cannot be made.
    for bad in ["", "../me", "1/2", "12?x=1", "12 3"] {
        assert!(BusinessId::parse(bad).is_err(), "{bad:?}");
        assert!(WabaId::parse(bad).is_err(), "{bad:?}");
    }
    let err = graph
        .subscribe_app(&waba("12"), &SecretString::from(""))
        .await
        .expect_err("empty token");
    assert!(matches!(err, GraphError::Config(_)));
    assert!(received(&server).await.is_empty());
}

#[test]
fn unusable_configurations_are_refused_at_construction() {
    type Change = Box<dyn Fn(&mut wa_graph::GraphConfig)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "relative base",
            Box::new(|c| c.base = "graph.facebook.com".into()),
        ),
        (
            "ftp base",
            Box::new(|c| c.base = "ftp://graph.facebook.com".into()),
        ),
        (
            "base with query",
            Box::new(|c| c.base = "https://graph.facebook.com/?x=1".into()),
        ),
        (
            "version with slash",
            Box::new(|c| c.version = "v22.0/me".into()),
        ),
        ("empty version", Box::new(|c| c.version = String::new())),
        (
            "empty app secret",
            Box::new(|c| c.app_secret = SecretString::from("")),
        ),
        (
            "empty token",
            Box::new(|c| c.system_user_token = SecretString::from("")),
        ),
        ("zero timeout", Box::new(|c| c.timeout = Duration::ZERO)),
        ("zero attempts", Box::new(|c| c.retry.max_attempts = 0)),
        (
            "min above max",
            Box::new(|c| {
                c.retry.min_delay = Duration::from_secs(3);
                c.retry.max_delay = Duration::from_secs(1);
            }),
        ),
    ];
    for (name, change) in cases {
        let mut cfg = config("https://graph.facebook.com");
        change(&mut cfg);
        let err = GraphClient::new(cfg).expect_err(name);
        assert!(matches!(err, GraphError::Config(_)), "{name}: {err:?}");
        assert_no_secret(&err.summary(), &[APP_SECRET, SYSTEM_USER_TOKEN]);
    }
    let mut cfg = config("https://graph.facebook.com");
    cfg.retry = RetryPolicy::no_retry();
    GraphClient::new(cfg).expect("one attempt is a valid policy");
}

#[test]
fn debug_output_of_config_and_client_holds_no_secret() {
    let cfg = config("https://graph.facebook.com");
    let text = format!(
        "{cfg:?} {:?}",
        GraphClient::new(cfg.clone()).expect("valid")
    );
    assert_no_secret(
        &text,
        &[
            APP_SECRET,
            SYSTEM_USER_TOKEN,
            &proof(APP_SECRET, SYSTEM_USER_TOKEN),
        ],
    );
    assert!(text.contains(SYSTEM_USER_ID));
}

#[test]
fn a_system_user_id_is_a_graph_id() {
    // What `validate` once checked by hand ("system user id is empty") is the id's rule now.
    for bad in ["", " ", "su-1"] {
        assert!(SystemUserId::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn defaults_match_the_documented_policy() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.min_delay, Duration::from_millis(200));
    assert_eq!(policy.max_delay, Duration::from_secs(2));
    assert_eq!(policy.max_attempts, 4);
    assert_eq!(policy.max_total, Duration::from_secs(5));
    let cfg = wa_graph::GraphConfig::new(
        SecretString::from("s"),
        SystemUserId::parse("1").unwrap(),
        SecretString::from("t"),
    );
    assert_eq!(cfg.base, "https://graph.facebook.com");
    assert_eq!(cfg.version, "v22.0");
}
