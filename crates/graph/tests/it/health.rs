//! The tenant check calls: `debug_token` with the app access token, `GET subscribed_apps`
//! with the business token, and the simulator's run-time switches for an expiring token, an
//! invalid one and a removed subscription.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wa_graph::token_invalid;
use wa_ids::AppId;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

use crate::{helpers::*, sim::Sim};

const APP_ID: &str = "100000000000001";

fn app() -> AppId {
    AppId::parse(APP_ID).unwrap()
}

#[tokio::test]
async fn debug_token_sends_the_app_access_token_as_a_bearer_and_reads_expiry() {
    let server = MockServer::start().await;
    let app_token = format!("{APP_ID}|{APP_SECRET}");
    let input = "EAAbusiness-under-inspection";
    Mock::given(method("GET"))
        .and(path("/v22.0/debug_token"))
        .and(header(
            "authorization",
            format!("Bearer {app_token}").as_str(),
        ))
        .and(query_param("input_token", input))
        .and(query_param(
            "appsecret_proof",
            proof(APP_SECRET, &app_token).as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "app_id": APP_ID, "type": "SYSTEM_USER", "is_valid": true,
            "expires_at": 1_735_184_001, "data_access_expires_at": 0,
            "scopes": ["whatsapp_business_management"]}})))
        .expect(1)
        .mount(&server)
        .await;

    let health = client(&server.uri())
        .debug_token(&app(), &SecretString::from(input))
        .await
        .expect("answered");
    assert!(health.is_valid);
    assert_eq!(health.expires_at, Some(1_735_184_001));
    assert!(health.expires_before(1_735_184_002));
    assert!(!health.expires_before(1_735_184_001));
}

#[tokio::test]
async fn an_invalid_token_is_an_answer_and_a_190_is_evidence() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v22.0/debug_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "app_id": APP_ID, "is_valid": false, "expires_at": 0,
            "error": {"code": 190, "subcode": 460, "message": "Session invalidated"}}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v22.0/77/subscribed_apps"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token", "type": "OAuthException",
            "code": 190, "error_subcode": 460, "fbtrace_id": "A1"}})))
        .mount(&server)
        .await;
    let graph = client(&server.uri());
    let token = SecretString::from("EAAsecret-business");

    let health = graph.debug_token(&app(), &token).await.expect("answered");
    assert!(!health.is_valid);
    assert_eq!(health.error_code, Some(190));
    let err = graph
        .subscribed_apps(&waba("77"), &token)
        .await
        .unwrap_err();
    assert!(token_invalid(&err));
    assert_no_secret(&err.to_string(), &["EAAsecret-business", APP_SECRET]);
}

#[tokio::test]
async fn subscribed_apps_lists_the_app_ids_with_the_business_token_as_a_bearer() {
    let server = MockServer::start().await;
    let token = "EAAbusiness-subscribed";
    Mock::given(method("GET"))
        .and(path("/v22.0/998877/subscribed_apps"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .and(query_param(
            "appsecret_proof",
            proof(APP_SECRET, token).as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"whatsapp_business_api_data": {"id": APP_ID, "name": "Ours", "link": "x"}},
            {"whatsapp_business_api_data": {"id": "555", "name": "Another partner"}}]})))
        .expect(1)
        .mount(&server)
        .await;

    let apps = client(&server.uri())
        .subscribed_apps(&waba("998877"), &SecretString::from(token))
        .await
        .expect("listed");
    assert_eq!(apps, [APP_ID, "555"]);
}

async fn switch(sim: &Sim, route: &str, body: Value) {
    let reply = reqwest::Client::new()
        .post(format!("{}{route}", sim.base))
        .json(&body)
        .send()
        .await
        .expect("switch");
    assert_eq!(reply.status(), 204, "{route} {body}");
}

#[tokio::test]
async fn the_simulator_switches_a_token_to_expiring_then_issues_a_new_one() {
    let sim = Sim::start(Sim::strict()).await;
    let graph = client(&sim.base);
    let first = graph.fetch_business_token(&business("4242")).await.unwrap();
    let health = graph.debug_token(&app(), &first).await.unwrap();
    assert_eq!(
        (health.is_valid, health.expires_at),
        (true, Some(0)),
        "never expires"
    );

    switch(
        &sim,
        "/_sim/tokens",
        json!({"business_id": "4242", "state": "expiring"}),
    )
    .await;
    let soon = graph.debug_token(&app(), &first).await.unwrap();
    assert!(soon.is_valid && soon.expires_at > Some(0));
    let second = graph.fetch_business_token(&business("4242")).await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret(), "a new token");
    let renewed = graph.debug_token(&app(), &second).await.unwrap();
    assert!(renewed.is_valid && renewed.expires_at > soon.expires_at);
    sim.stop().await;
}

#[tokio::test]
async fn the_simulator_switches_a_token_to_invalid_and_a_subscription_off() {
    let sim = Sim::start(Sim::strict()).await;
    let graph = client(&sim.base);
    let token = graph.fetch_business_token(&business("4343")).await.unwrap();
    let listed = graph.subscribed_apps(&waba("8888"), &token).await.unwrap();
    assert_eq!(listed, [APP_ID]);

    switch(
        &sim,
        "/_sim/subscriptions",
        json!({"waba_id": "8888", "subscribed": false, "refuse": true}),
    )
    .await;
    assert!(
        graph
            .subscribed_apps(&waba("8888"), &token)
            .await
            .unwrap()
            .is_empty()
    );
    let refused = graph
        .subscribe_app(&waba("8888"), &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(200));
    switch(
        &sim,
        "/_sim/subscriptions",
        json!({"waba_id": "8888", "subscribed": false}),
    )
    .await;
    graph
        .subscribe_app(&waba("8888"), &token)
        .await
        .expect("subscribed again");
    assert_eq!(
        graph.subscribed_apps(&waba("8888"), &token).await.unwrap(),
        [APP_ID]
    );

    switch(
        &sim,
        "/_sim/tokens",
        json!({"business_id": "4343", "state": "invalid"}),
    )
    .await;
    let health = graph.debug_token(&app(), &token).await.unwrap();
    assert!(!health.is_valid);
    let err = graph
        .phone_numbers(&waba("8888"), &token)
        .await
        .unwrap_err();
    assert!(token_invalid(&err), "{err}");
    let calls = sim.get("/_sim/calls?route=debug_token").await;
    assert_eq!(calls["calls"]["debug_token"], 1);
    assert_eq!(calls["received"].as_array().unwrap().len(), 1);
    sim.stop().await;
}
