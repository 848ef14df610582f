use lapin::types::AMQPValue;
use serde_json::{Value, json};
use wa_envelope::session::canonical_sha256;

use crate::helpers::{Options, SECRET, TestApp, spawn_app, spawn_with};

const TOKEN: &str = "signup-api-token-for-the-tests-0123456789";

async fn spawn_signups() -> TestApp {
    spawn_with(Options {
        signup_api_token: Some(TOKEN),
        ..Options::default()
    })
    .await
}

fn finish() -> Value {
    json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH_GRANT_ONLY_API_ACCESS", "data": {
        "phone_number_id": "106540352242922", "waba_id": "524126980791429",
        "business_id": "2729063490586005"}})
}

impl TestApp {
    async fn post_signup(
        &self,
        bearer: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/signup-events"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(bearer) = bearer {
            req = req.header("authorization", bearer);
        }
        req.send().await.expect("POST")
    }

    fn signups(&self) -> String {
        self.topology.signup_events_queue()
    }
}

#[tokio::test]
async fn the_route_is_off_without_a_signup_token() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {TOKEN}");
    let r = app.post_signup(Some(&bearer), finish().to_string()).await;
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .get(app.url("/v1/signup-events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.depth(&app.signups()).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_bearer_is_401_and_publishes_nothing() {
    let app = spawn_signups().await;
    let wrong = format!("Bearer {TOKEN}x");
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let basic = format!("Basic {TOKEN}");
    for bearer in [
        None,
        Some(wrong.as_str()),
        Some(short.as_str()),
        Some(basic.as_str()),
        Some(TOKEN),
        Some("Bearer "),
    ] {
        let r = app.post_signup(bearer, finish().to_string()).await;
        assert_eq!(r.status(), 401, "{bearer:?}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{bearer:?}"
        );
    }
    // The app secret signature is no substitute for the bearer.
    let body = finish().to_string();
    let r = app
        .client
        .post(app.url("/v1/signup-events"))
        .header(
            "x-hub-signature-256",
            wa_envelope::sign(SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(app.depth(&app.signups()).await, 0);
    let r = app
        .client
        .get(app.url("/v1/signup-events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "the route exists once a token is set");
    app.stop().await;
}

#[tokio::test]
async fn malformed_events_are_400_with_the_reason_and_publish_nothing() {
    let app = spawn_signups().await;
    let bearer = format!("Bearer {TOKEN}");
    for (body, reason) in [
        ("not json".to_owned(), "not valid JSON"),
        ("[]".to_owned(), "object"),
        (json!({"type": "OTHER", "event": "FINISH", "data": {}}).to_string(), "`type`"),
        (json!({"type": "WA_EMBEDDED_SIGNUP", "event": "finish", "data": {}}).to_string(), "`event`"),
        (json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH", "data": "x"}).to_string(), "`data`"),
        (json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH", "data": {}}).to_string(), "waba_id"),
        (
            json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH", "data": {"waba_id": "1", "phone_number_id": 2}}).to_string(),
            "phone_number_id",
        ),
        (json!({"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "data": {}}).to_string(), "current_step"),
        (
            json!({"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "data": {"error_message": "x", "error_id": "1"}}).to_string(),
            "session_id",
        ),
    ] {
        let r = app.post_signup(Some(&bearer), body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(reason), "{body}: {text}");
    }
    let huge =
        json!({"type": "WA_EMBEDDED_SIGNUP", "event": "X", "data": {"pad": "a".repeat(70_000)}});
    let r = app.post_signup(Some(&bearer), huge.to_string()).await;
    assert_eq!(r.status(), 413);
    assert_eq!(app.depth(&app.signups()).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_session_event_is_published_persistent_and_keyed_by_its_canonical_body() {
    let app = spawn_signups().await;
    let bearer = format!("Bearer {TOKEN}");
    let r = app.post_signup(Some(&bearer), finish().to_string()).await;
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    let key = canonical_sha256(&finish());
    assert_eq!(answer["id"], key);
    // The same event, written differently, re-sent with a lowercase scheme: the same key.
    let reordered = r#"{"data": {"business_id": "2729063490586005", "waba_id": "524126980791429",
        "phone_number_id": "106540352242922"}, "event": "FINISH_GRANT_ONLY_API_ACCESS",
        "type": "WA_EMBEDDED_SIGNUP"}"#;
    let r = app
        .post_signup(Some(&format!("bearer {TOKEN}")), reordered.to_owned())
        .await;
    assert_eq!(r.status(), 202);
    // An event this code does not know is accepted and kept.
    let unknown = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "SOMETHING_NEW", "data": {"x": 1}});
    assert_eq!(
        app.post_signup(Some(&bearer), unknown.to_string())
            .await
            .status(),
        202
    );

    let msgs = app.drain(&app.signups(), 3).await;
    assert_eq!(msgs.len(), 3);
    for m in &msgs[..2] {
        assert_eq!(m.routing_key.as_str(), "embedded_signup.session");
        assert_eq!(*m.properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(
            m.properties.message_id().as_ref().map(|s| s.as_str()),
            Some(key.as_str())
        );
        let body: Value = serde_json::from_slice(&m.data).unwrap();
        assert_eq!(body["id"], key);
        assert_eq!(body["object"], "embedded_signup");
        assert_eq!(body["field"], "session");
        assert_eq!(body["entry_time"], Value::Null);
        assert_eq!(body["value"], finish());
        assert!(body["received_at"].as_i64().unwrap() > 1_700_000_000);
        let Some(AMQPValue::LongString(tp)) = m
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("traceparent").cloned())
        else {
            panic!("traceparent header missing")
        };
        assert!(wa_telemetry::trace_id(&tp.to_string()).is_some(), "{tp}");
    }
    let third: Value = serde_json::from_slice(&msgs[2].data).unwrap();
    assert_eq!(third["value"]["event"], "SOMETHING_NEW");
    assert_eq!(
        app.depth(&app.account_update()).await,
        0,
        "not an account_update"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"wa_ingress_requests_total{route="signup",status="202"} 3"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unconfirmed_signup_event_is_a_503_with_retry_after() {
    let app = spawn_signups().await;
    // A queue that refuses every message, bound beside the work queue: the broker nacks.
    let full = app.refuse_publishes("embedded_signup.session").await;
    let bearer = format!("Bearer {TOKEN}");
    let r = app.post_signup(Some(&bearer), finish().to_string()).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    app.channel
        .queue_delete(full.as_str().into(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        app.post_signup(Some(&bearer), finish().to_string())
            .await
            .status(),
        202
    );
    app.stop().await;
}

#[tokio::test]
async fn integration_webhooks_reach_the_account_update_queue() {
    let app = spawn_app().await;
    let body = |field: &str| {
        json!({"object": "application", "entry": [{"id": "1061231232323117", "time": 1763900500,
            "changes": [{"field": field, "value": {"business_manager_id": "942647313864044",
            "tp_config_id": "cfg-1"}}]}]})
        .to_string()
        .into_bytes()
    };
    for field in [
        "business_integration_install",
        "business_integration_uninstall",
    ] {
        assert_eq!(app.post_signed(&body(field)).await.status(), 200);
    }
    assert_eq!(
        app.post_signed(&body("business_integration_update"))
            .await
            .status(),
        200
    );
    let msgs = app.drain(&app.account_update(), 2).await;
    let mut keys: Vec<&str> = msgs.iter().map(|m| m.routing_key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "application.business_integration_install",
            "application.business_integration_uninstall"
        ]
    );
    // Nobody consumes the update: kept in the unrouted queue, not dropped.
    let unrouted = app.drain(&app.topology.unrouted(), 1).await;
    assert_eq!(
        unrouted[0].routing_key.as_str(),
        "application.business_integration_update"
    );
    app.stop().await;
}
