//! Embedded Signup session events through `wa.signup_events`.

use serde_json::{Value, json};
use wa_broker::Outgoing;
use wa_envelope::{ChangeMessage, session::SessionEvent};

use crate::helpers::*;

const TOKEN: &str = "business-token-signup-tests";
/// When the test's session events were received (one funnel hour).
const RECEIVED: i64 = 1_800_000_000;

fn finish(event: &str, waba: &str, phone: &str) -> Value {
    json!({"type": "WA_EMBEDDED_SIGNUP", "event": event,
        "data": {"phone_number_id": phone, "waba_id": waba, "business_id": "2729063490586005"}})
}

fn cancel(step: &str, launch: &str) -> Value {
    json!({"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "launch_id": launch,
        "data": {"current_step": step}})
}

fn error(code: Value, session: &str, launch: Option<&str>) -> Value {
    let mut data = json!({"error_message": "Something went wrong", "session_id": session,
        "timestamp": 1_689_037_117});
    if code.is_string() {
        data["error_id"] = code;
    } else {
        data["error_code"] = code;
    }
    let mut ev = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "data": data});
    if let Some(launch) = launch {
        ev["launch_id"] = json!(launch);
    }
    ev
}

/// Publishes a session event as the ingress does; returns its message id.
async fn forward(env: &Env, body: Value) -> String {
    let change = SessionEvent::from_value(body)
        .expect("a valid session event")
        .into_change(RECEIVED);
    publish(env, &change).await;
    change.id.into_string()
}

async fn publish(env: &Env, change: &ChangeMessage) {
    publish_to(
        env,
        &env.topology.webhooks_exchange(),
        &change.routing_key(),
        change,
    )
    .await;
}

/// Publishes `change` to `routing_key` on `exchange` (`""`: straight into a queue).
async fn publish_to(env: &Env, exchange: &str, routing_key: &str, change: &ChangeMessage) {
    let message = Outgoing::persistent_json(
        exchange,
        routing_key,
        change.to_json(),
        change.id.as_str(),
        0,
    );
    env.broker
        .publish_all(std::slice::from_ref(&message))
        .await
        .expect("publish");
}

#[tokio::test]
async fn a_claim_before_the_install_is_replaced_by_graphs_list() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    forward(
        &env,
        finish(
            "FINISH_GRANT_ONLY_API_ACCESS",
            "524126980791429",
            "106540352242922",
        ),
    )
    .await;
    let t = env
        .wait_tenant("524126980791429", "pending with its number", |t| {
            !t.phone_number_ids.is_empty()
        })
        .await;
    assert_eq!(status(&t), "pending");
    assert_eq!(t.phone_number_ids, ["106540352242922"]);
    assert_eq!(token_status(&t), None);
    assert_eq!(t.owner_business_id, None, "browser data names no owner");

    env.deliver(&installed(
        "524126980791429",
        "942647313864044",
        1_763_900_000,
    ))
    .await;
    let t = env
        .wait_tenant("524126980791429", "installed, numbers verified", |t| {
            token_status(t) == Some("active") && t.subscribed && t.phone_numbers_verified
        })
        .await;
    assert_eq!(status(&t), "installed");
    assert_eq!(
        t.phone_number_ids,
        [PHONE_NUMBER],
        "Graph's list replaces the browser's claim"
    );
    let listings = env.graph_calls("/phone_numbers").await;
    assert_eq!(listings.len(), 1);
    assert_eq!(
        listings[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str()),
        "read with the business token"
    );
    assert_eq!(t.owner_business_id.unwrap(), "942647313864044");
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 1);
    env.stop().await;
}

#[tokio::test]
async fn a_claim_after_the_install_is_ignored() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed(
        "524126980791430",
        "942647313864045",
        1_763_900_000,
    ))
    .await;
    env.wait_tenant("524126980791430", "installed, numbers verified", |t| {
        token_status(t) == Some("active") && t.phone_numbers_verified
    })
    .await;
    forward(&env, finish("FINISH", "524126980791430", "106540352242923")).await;
    wait_metric(
        &env,
        r#"wa_worker_events_total{event="FINISH",outcome="done"}"#,
        1.0,
    )
    .await;
    let t = env.tenant("524126980791430").await.unwrap();
    assert_eq!(status(&t), "installed");
    assert_eq!(token_status(&t), Some("active"));
    assert_eq!(
        t.phone_number_ids,
        [PHONE_NUMBER],
        "a claim never extends a verified list"
    );
    assert!(t.phone_numbers_verified);
    assert_eq!(
        t.last_event_time, 1_763_900_000,
        "browser events order nothing"
    );
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 1);
    env.stop().await;
}

#[tokio::test]
async fn a_finish_alone_stays_pending_and_fetches_no_token() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    let body = finish(
        "FINISH_GRANT_ONLY_API_ACCESS",
        "600000000000001",
        "700000000000001",
    );
    forward(&env, body.clone()).await;
    // Re-sent by the partner's backend: the same message, applied once.
    forward(&env, body).await;
    forward(
        &env,
        json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH_ONLY_WABA",
            "data": {"waba_id": "600000000000002", "waba_ids": ["600000000000002", "600000000000003"]}}),
    )
    .await;
    // Both copies and the multi-WABA event settled.
    wait_metric(
        &env,
        r#"wa_worker_events_total{event="FINISH_GRANT_ONLY_API_ACCESS",outcome="done"}"#,
        2.0,
    )
    .await;
    wait_metric(
        &env,
        r#"wa_worker_events_total{event="FINISH_ONLY_WABA",outcome="done"}"#,
        1.0,
    )
    .await;
    let t = env.tenant("600000000000001").await.unwrap();
    assert_eq!(status(&t), "pending");
    assert_eq!(t.phone_number_ids, ["700000000000001"]);
    assert_eq!(token_status(&t), None);
    for waba in ["600000000000002", "600000000000003"] {
        let t = env.tenant(waba).await.unwrap();
        assert_eq!(status(&t), "pending", "{waba}");
        assert!(t.phone_number_ids.is_empty());
    }
    let m = env.metrics(0).await;
    assert_eq!(
        metric(
            &m,
            r#"wa_worker_signup_events_total{kind="finish",event="FINISH_GRANT_ONLY_API_ACCESS"}"#
        ),
        1.0,
        "counted once"
    );
    assert_eq!(metric(&m, "wa_worker_duplicates_total"), 1.0);
    assert_eq!(
        env.graph_calls("").await.len(),
        0,
        "no Graph request at all: no token fetched, nothing subscribed"
    );
    let f = env.store.signup_funnel(RECEIVED, RECEIVED).await.unwrap();
    assert_eq!(f.finished, 2);
    assert_eq!(
        f.started, 2,
        "events without a session id are sessions of their own"
    );
    env.stop().await;
}

#[tokio::test]
async fn cancels_and_errors_are_kept_per_session_and_counted_by_step_and_code() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    let first = forward(&env, cancel("PHONE_NUMBER_VERIFICATION", "launch-1")).await;
    forward(&env, cancel("PHONE_NUMBER_VERIFICATION", "launch-2")).await;
    forward(&env, cancel("BUSINESS_ACCOUNT_SELECTION", "launch-3")).await;
    forward(&env, error(json!(2_593_079), "meta-s-1", Some("launch-1"))).await;
    forward(&env, error(json!("524126"), "meta-s-2", None)).await;
    forward(&env, cancel("PHONE_NUMBER_VERIFICATION", "launch-1")).await; // a re-send
    wait_metric(
        &env,
        r#"wa_worker_events_total{event="CANCEL",outcome="done"}"#,
        6.0,
    )
    .await;

    let f = env.store.signup_funnel(RECEIVED, RECEIVED).await.unwrap();
    assert_eq!(
        f.started, 4,
        "launch-1 (its error too), launch-2, launch-3, meta-s-2"
    );
    assert_eq!(f.cancelled, 3);
    assert_eq!(f.cancelled_by_step["PHONE_NUMBER_VERIFICATION"], 2);
    assert_eq!(f.cancelled_by_step["BUSINESS_ACCOUNT_SELECTION"], 1);
    assert_eq!(f.errors, 2);
    assert_eq!(f.errors_by_code["2593079"], 1);
    assert_eq!(f.errors_by_code["524126"], 1);
    assert_eq!(f.finished, 0);

    let launch = env
        .store
        .signup_session(&session("launch-1"))
        .await
        .unwrap();
    assert_eq!(launch.len(), 2, "{launch:?}");
    assert_eq!(launch[0]["id"], first);
    assert_eq!(launch[0]["received_at"], RECEIVED);
    assert_eq!(
        launch[0]["message"]["data"]["current_step"],
        "PHONE_NUMBER_VERIFICATION"
    );
    assert_eq!(launch[1]["message"]["data"]["error_code"], 2_593_079);
    let meta = env
        .store
        .signup_session(&session("meta-s-2"))
        .await
        .unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["message"]["data"]["error_id"], "524126");

    let m = env.metrics(0).await;
    assert_eq!(
        metric(
            &m,
            r#"wa_worker_signup_cancels_total{step="PHONE_NUMBER_VERIFICATION"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(&m, r#"wa_worker_signup_errors_total{code="2593079"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"wa_worker_signup_errors_total{code="524126"}"#),
        1.0
    );
    env.stop().await;
}

#[tokio::test]
async fn a_malformed_session_message_goes_to_the_dlq_with_its_routing_key() {
    let mut env = spawn_env().await;
    env.spawn_worker().await;
    let change = ChangeMessage {
        id: "f".repeat(64).parse().unwrap(),
        object: "embedded_signup".into(),
        entry_id: String::new(),
        entry_time: None,
        field: "session".into(),
        value: json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH", "data": {}}),
        received_at: RECEIVED,
    };
    publish(&env, &change).await;
    let letters = env.wait_dead_letters(1).await;
    assert_eq!(letters[0].routing_key, "embedded_signup.session");
    let reason = letters[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("waba_id"), "{reason}");
    env.stop().await;
}

#[tokio::test]
async fn a_message_is_read_as_what_its_queue_carries() {
    let mut env = spawn_env().await;
    env.spawn_worker().await;
    // A valid session event put straight into wa.account_update: not a webhook change.
    let session = SessionEvent::from_value(finish("FINISH", "861000", "862000"))
        .expect("a valid session event")
        .into_change(RECEIVED);
    publish_to(&env, "", &env.topology.account_update_queue(), &session).await;
    // A webhook change put straight into wa.signup_events: not a session event.
    let envelope = installed("863000", "864000", 10).to_string();
    let webhook = wa_envelope::Envelope::parse(envelope.as_bytes())
        .expect("an envelope")
        .into_changes(0)
        .remove(0);
    publish_to(&env, "", &env.topology.signup_events_queue(), &webhook).await;
    let mut letters = env.wait_dead_letters(2).await;
    letters.sort_by(|a, b| a.routing_key.cmp(&b.routing_key));
    // Each goes back where it belongs if replayed.
    assert_eq!(letters[0].routing_key, "embedded_signup.session");
    assert_eq!(
        letters[1].routing_key,
        "whatsapp_business_account.account_update"
    );
    let reasons: Vec<String> = letters
        .iter()
        .map(|l| l.reason.clone().unwrap_or_default())
        .collect();
    assert!(reasons[0].contains("field `session`"), "{reasons:?}");
    assert!(
        reasons[1].contains("not an Embedded Signup session event"),
        "{reasons:?}"
    );
    for waba in ["861000", "863000"] {
        assert!(env.tenant(waba).await.is_none(), "{waba} applied");
    }
    env.stop().await;
}
