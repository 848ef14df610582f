//! `GET /_sim/calls` lists the Graph calls the simulator received, in arrival order: route,
//! the id in the path, status and outcome, never a token or proof; `?route=` keeps one route.

use secrecy::SecretString;
use serde_json::{Value, json};
use wa_graph::sim::SimConfig;

use crate::{helpers::*, sim::Sim};

/// `received`'s entries without their arrival time (checked on its own).
fn without_time(received: &Value) -> Vec<Value> {
    received
        .as_array()
        .expect("received is a list")
        .iter()
        .map(|call| {
            let mut call = call.clone();
            let at = call
                .as_object_mut()
                .and_then(|c| c.remove("at_ms"))
                .expect("at_ms");
            assert!(at.as_u64().is_some_and(|ms| ms > 0), "at_ms: {at}");
            call
        })
        .collect()
}

#[tokio::test]
async fn lists_each_graph_call_with_its_id_and_outcome_and_no_secret() {
    let sim = Sim::start(Sim::strict()).await;
    let p = proof(APP_SECRET, SYSTEM_USER_TOKEN);
    let token_query = [
        ("access_token", SYSTEM_USER_TOKEN),
        ("appsecret_proof", p.as_str()),
        ("system_user_id", SYSTEM_USER_ID),
        ("fetch_only", "true"),
    ];

    let (status, body, _) = sim
        .post("/v22.0/2001/system_user_access_tokens", &token_query)
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("token").to_owned();
    let token_proof = proof(APP_SECRET, &token);
    let (status, ..) = sim
        .post(
            "/v22.0/1001/subscribed_apps",
            &[("access_token", &token), ("appsecret_proof", &token_proof)],
        )
        .await;
    assert_eq!(status, 200);
    let (status, ..) = sim
        .post(
            "/v22.0/2002/system_user_access_tokens",
            &[("access_token", "wrong"), ("appsecret_proof", "0")],
        )
        .await;
    assert_eq!(status, 400);
    sim.set_mode(json!({"fail_transient": 1})).await;
    let (status, ..) = sim
        .post("/v22.0/2003/system_user_access_tokens", &token_query)
        .await;
    assert_eq!(status, 500);
    let (status, ..) = sim.post("/v22.0/2004/somewhere_else", &[]).await;
    assert_eq!(status, 404);

    let all = sim.get("/_sim/calls").await;
    assert_eq!(
        without_time(&all["received"]),
        [
            json!({"seq": 1, "method": "POST", "route": "system_user_access_tokens",
                   "business_id": "2001", "status": 200, "outcome": "ok"}),
            json!({"seq": 2, "method": "POST", "route": "subscribed_apps",
                   "waba_id": "1001", "status": 200, "outcome": "ok"}),
            json!({"seq": 3, "method": "POST", "route": "system_user_access_tokens",
                   "business_id": "2002", "status": 400, "outcome": "rejected"}),
            json!({"seq": 4, "method": "POST", "route": "system_user_access_tokens",
                   "business_id": "2003", "status": 500, "outcome": "failed_transient"}),
            json!({"seq": 5, "method": "POST", "route": "unknown",
                   "status": 404, "outcome": "not_found"}),
        ]
    );
    assert_eq!(all["received_dropped"], 0);
    // The counters are unchanged by the list, and the admin routes are not Graph calls.
    assert_eq!(all["calls"]["system_user_access_tokens"], 3);
    assert_eq!(all["calls"]["not_found"], 1);
    let text = all.to_string();
    assert_no_secret(
        &text,
        &[SYSTEM_USER_TOKEN, &token, &p, &token_proof, APP_SECRET],
    );

    let subscribed = sim.get("/_sim/calls?route=subscribed_apps").await;
    let routes: Vec<&Value> = subscribed["received"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| &c["route"])
        .collect();
    assert_eq!(routes, [&json!("subscribed_apps")]);
    assert_eq!(
        sim.get("/_sim/calls?route=nothing").await["received"],
        json!([])
    );
    sim.stop().await;
}

#[tokio::test]
async fn arrival_times_follow_the_order_of_the_calls() {
    let sim = Sim::start(SimConfig::new(SecretString::from(APP_SECRET))).await;
    for business in ["3001", "3002", "3003"] {
        let route = format!("/v22.0/{business}/system_user_access_tokens");
        sim.post(
            &route,
            &[
                ("access_token", "t"),
                ("system_user_id", SYSTEM_USER_ID),
                ("fetch_only", "true"),
            ],
        )
        .await;
    }

    let calls = sim.get("/_sim/calls?route=system_user_access_tokens").await;
    let received = calls["received"].as_array().expect("list");
    let businesses: Vec<&str> = received
        .iter()
        .map(|c| c["business_id"].as_str().expect("business_id"))
        .collect();
    assert_eq!(businesses, ["3001", "3002", "3003"]);
    let times: Vec<u64> = received
        .iter()
        .map(|c| c["at_ms"].as_u64().expect("at_ms"))
        .collect();
    assert!(times.is_sorted(), "{times:?}");
    sim.stop().await;
}
