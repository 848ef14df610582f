//! Error parsing and classification, on Meta's fixtures and on the odd answers proxies send,
//! and that no error text ever carries a token or a proof.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde_json::json;
use wa_graph::{GraphError, RetryPolicy, parse_error};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).expect("header value"));
    }
    map
}

#[test]
fn meta_fixtures_parse_into_every_field() {
    let err = parse_error(
        400,
        &HeaderMap::new(),
        fixture("graph_error_permanent.json").as_bytes(),
    );
    assert_eq!(
        err,
        GraphError::Api {
            status: 400,
            code: Some(190),
            subcode: Some(458),
            message: "Error validating access token: The user has not authorized application 1061231232323117."
                .into(),
            error_type: Some("OAuthException".into()),
            fbtrace_id: Some("Z9y8X7w6V5u".into()),
            transient: false,
            retry_after: None,
        }
    );
    assert_eq!(
        err.summary(),
        "Graph API error: Error validating access token: The user has not authorized application \
         1061231232323117. (code 190, subcode 458, OAuthException, HTTP 400, fbtrace_id Z9y8X7w6V5u)"
    );

    let err = parse_error(
        500,
        &HeaderMap::new(),
        fixture("graph_error_transient.json").as_bytes(),
    );
    assert!(err.is_transient());
    assert_eq!(err.code(), Some(2));
    assert_eq!(err.fbtrace_id(), Some("A1b2C3d4E5f"));
}

#[test]
fn classification_matches_the_spec() {
    let body = |code: i64| json!({"error": {"message": "m", "code": code}}).to_string();
    for code in wa_graph::TRANSIENT_CODES {
        assert!(
            parse_error(400, &HeaderMap::new(), body(*code).as_bytes()).is_transient(),
            "code {code}"
        );
    }
    for code in wa_graph::PERMANENT_CODES {
        assert!(
            !parse_error(400, &HeaderMap::new(), body(*code).as_bytes()).is_transient(),
            "code {code}"
        );
        assert!(
            !parse_error(503, &HeaderMap::new(), body(*code).as_bytes()).is_transient(),
            "code {code} on 503"
        );
    }
    let cases: &[(u16, &str, bool)] = &[
        (500, "", true),
        (502, "<html>Bad Gateway</html>", true),
        (429, "", true),
        (400, r#"{"error":{"message":"m","code":131999}}"#, false),
        (404, "not found", false),
        (
            403,
            r#"{"error":{"message":"m","code":99999,"is_transient":true}}"#,
            true,
        ),
        (
            503,
            r#"{"error":{"message":"m","code":99999,"is_transient":false}}"#,
            true,
        ),
        (
            400,
            r#"{"error":{"message":"m","code":100,"is_transient":true}}"#,
            true,
        ),
    ];
    for (status, body, transient) in cases {
        let err = parse_error(*status, &HeaderMap::new(), body.as_bytes());
        assert_eq!(err.is_transient(), *transient, "{status} {body}");
    }
}

#[test]
fn odd_bodies_are_tolerated() {
    let none = HeaderMap::new();
    let err = parse_error(502, &none, b"<html><body>upstream went away</body></html>");
    assert_eq!(err.code(), None);
    assert_eq!(
        err.summary(),
        "Graph API error: HTTP 502 Bad Gateway without a Graph error body (HTTP 502)"
    );

    let err = parse_error(400, &none, br#"{"error": "plain string error"}"#);
    assert!(
        err.summary()
            .starts_with("Graph API error: plain string error")
    );

    let err = parse_error(
        400,
        &none,
        br#"{"error": {"code": "190", "error_subcode": "460", "message": null}}"#,
    );
    assert_eq!((err.code(), err.subcode()), (Some(190), Some(460)));
    assert!(err.summary().contains("without a Graph error body"));

    let err = parse_error(
        400,
        &none,
        br#"{"error": {"message": "two\nlines", "code": 1.5, "is_transient": "true"}}"#,
    );
    assert!(err.is_transient());
    assert_eq!(err.code(), None);
    assert!(!err.summary().contains('\n'));

    let long = "x".repeat(70_000);
    let err = parse_error(
        500,
        &none,
        json!({"error": {"message": long}}).to_string().as_bytes(),
    );
    assert!(err.summary().chars().count() < 1200, "messages are bounded");

    let err = parse_error(400, &headers(&[("x-fb-trace-id", "HDRTRACE")]), b"");
    assert_eq!(err.fbtrace_id(), Some("HDRTRACE"));
}

#[test]
fn server_hints_are_parsed_for_transient_errors_only() {
    let err = parse_error(429, &headers(&[("retry-after", " 7 ")]), b"");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

    let err = parse_error(
        429,
        &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
        b"",
    );
    assert_eq!(
        err.retry_after(),
        None,
        "HTTP dates are not used by Graph; ignored"
    );

    let usage = r#"{"1":[{"estimated_time_to_regain_access":3}],"2":[{"estimated_time_to_regain_access":"5"}]}"#;
    let err = parse_error(
        429,
        &headers(&[("retry-after", "30"), ("x-business-use-case-usage", usage)]),
        b"",
    );
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(300)),
        "the longer of both"
    );

    let zero = r#"{"1":[{"type":"x","call_count":5,"estimated_time_to_regain_access":0}]}"#;
    assert_eq!(
        parse_error(500, &headers(&[("x-business-use-case-usage", zero)]), b"").retry_after(),
        None
    );
    assert_eq!(
        parse_error(
            500,
            &headers(&[("x-business-use-case-usage", "not json")]),
            b""
        )
        .retry_after(),
        None
    );

    let err = parse_error(
        400,
        &headers(&[("retry-after", "30")]),
        br#"{"error":{"message":"m","code":190}}"#,
    );
    assert_eq!(
        err.retry_after(),
        None,
        "a permanent error has nothing to wait for"
    );
}

#[test]
fn other_variants_summarise_and_classify() {
    let network = GraphError::Network {
        message: "connection refused".into(),
    };
    assert!(network.is_transient());
    assert_eq!(network.summary(), "Graph network error: connection refused");
    assert_eq!(
        (network.code(), network.status(), network.fbtrace_id()),
        (None, None, None)
    );
    let malformed = GraphError::Malformed {
        message: "reply has no access_token".into(),
    };
    assert!(malformed.is_transient());
    assert!(!GraphError::Config("x".into()).is_transient());
    assert_eq!(malformed.kind(), "malformed");
}

#[tokio::test]
async fn error_text_never_holds_the_token_or_the_proof() {
    // A hostile reply that echoes every secret it was sent, in the message and trace id.
    let server = MockServer::start().await;
    let business_token = "EAAbusiness-secret-token";
    let secrets = [
        SYSTEM_USER_TOKEN.to_owned(),
        proof(APP_SECRET, SYSTEM_USER_TOKEN),
        business_token.to_owned(),
        proof(APP_SECRET, business_token),
    ];
    let echo = format!(
        "bad token {} proof {} / {} {}",
        secrets[0], secrets[1], secrets[2], secrets[3]
    );
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": echo, "code": 100, "type": secrets[0], "fbtrace_id": secrets[3]}})),
        )
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.retry = RetryPolicy::no_retry();
    let graph = wa_graph::GraphClient::new(cfg).expect("valid");

    let fetch = graph
        .fetch_business_token(&business("1"))
        .await
        .expect_err("error");
    let subscribe = graph
        .subscribe_app(&waba("2"), &SecretString::from(business_token))
        .await
        .expect_err("error");

    for err in [&fetch, &subscribe] {
        let text = format!("{err} | {err:?} | {}", err.summary());
        assert!(text.contains("[redacted]"), "{text}");
        assert_no_secret(&text, &[&secrets[0], &secrets[1], APP_SECRET]);
    }
    let text = format!("{subscribe} | {subscribe:?}");
    assert_no_secret(&text, &[&secrets[2], &secrets[3]]);
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn an_oversized_reply_is_read_only_in_part() {
    let server = MockServer::start().await;
    let huge = format!(r#"{{"access_token": "{}"}}"#, "a".repeat(200 * 1024));
    Mock::given(method("POST"))
        .and(path("/v22.0/9/system_user_access_tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, "application/json"))
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.retry = RetryPolicy::no_retry();

    let err = wa_graph::GraphClient::new(cfg)
        .expect("valid")
        .fetch_business_token(&business("9"))
        .await
        .expect_err("too big");

    assert_eq!(
        err,
        GraphError::Malformed {
            message: "reply larger than 64 KiB".into()
        }
    );
}
