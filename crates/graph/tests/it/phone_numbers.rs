//! `GET /{waba_id}/phone_numbers`: the request (bearer token, proof), the reply read as ids,
//! and the simulator's deterministic list.

use secrecy::SecretString;
use serde_json::json;
use wa_graph::sim;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

use crate::{helpers::*, sim::Sim};

#[tokio::test]
async fn phone_numbers_sends_the_business_token_as_a_bearer_with_its_proof() {
    let server = MockServer::start().await;
    let business_token = "EAAbusinesstoken-phones";
    let expected_proof = proof(APP_SECRET, business_token);
    Mock::given(method("GET"))
        .and(path("/v22.0/998877/phone_numbers"))
        .and(header(
            "authorization",
            format!("Bearer {business_token}").as_str(),
        ))
        .and(query_param("appsecret_proof", expected_proof.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "106540352242922", "display_phone_number": "+1 555-0100"},
            {"id": "106540352242923", "verified_name": "Acme"}]})))
        .expect(1)
        .mount(&server)
        .await;

    let ids = client(&server.uri())
        .phone_numbers(&waba("998877"), &SecretString::from(business_token))
        .await
        .expect("listed");
    assert_eq!(ids, ["106540352242922", "106540352242923"]);
    let requests = received(&server).await;
    assert!(
        !query_pairs(&requests[0])
            .iter()
            .any(|(k, v)| k == "access_token" || v == business_token),
        "the token travels in the header only"
    );
}

#[tokio::test]
async fn phone_numbers_errors_are_classified_like_every_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token", "type": "OAuthException",
            "code": 190, "error_subcode": 458, "fbtrace_id": "A1"}})))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .phone_numbers(&waba("998877"), &SecretString::from("EAAtok"))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    assert_eq!((err.code(), err.subcode()), (Some(190), Some(458)));
    assert_no_secret(&err.to_string(), &["EAAtok"]);
}

#[tokio::test]
async fn the_simulator_lists_the_same_numbers_for_a_waba_every_time() {
    let sim = Sim::start(Sim::strict()).await;
    let graph = client(&sim.base);
    let token = graph
        .fetch_business_token(&business("1234567"))
        .await
        .expect("token");
    let first = graph.phone_numbers(&waba("7654321"), &token).await.unwrap();
    let again = graph.phone_numbers(&waba("7654321"), &token).await.unwrap();
    assert_eq!(first, again);
    let listed: Vec<&str> = first.iter().map(|id| id.as_str()).collect();
    assert_eq!(listed, sim::phone_number_ids(APP_SECRET, "7654321"));
    let other = graph.phone_numbers(&waba("7654322"), &token).await.unwrap();
    assert_ne!(first, other);
    let refused = graph
        .phone_numbers(&waba("7654321"), &SecretString::from("not-issued"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(190), "strict mode checks the bearer");
    sim.stop().await;
}
