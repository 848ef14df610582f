//! Embedded Signup session events through `wa.signup_events`, and the business integration
//! webhooks through `wa.account_update`.

use std::time::Duration;

use serde_json::{Value, json};
use wa_broker::Outgoing;
use wa_envelope::{ChangeMessage, session::SessionEvent};
use wa_store::TenantRecord;

use crate::helpers::*;

const TOKEN: &str = "business-token-signup-tests";
/// When the test's session events were received (one funnel hour).
const RECEIVED: i64 = 1_800_000_000;

fn status(t: &TenantRecord) -> &'static str {
    t.status.as_str()
}

fn token_status(t: &TenantRecord) -> Option<&'static str> {
    t.token.status.map(|s| s.as_str())
}

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
    let message = Outgoing::persistent_json(
        env.topology.webhooks_exchange(),
        change.routing_key(),
        change.to_json(),
        change.id.as_str(),
        0,
    );
    env.broker
        .publish_all(std::slice::from_ref(&message))
        .await
        .expect("publish");
}

fn integration(field: &str, business: &str, time: i64) -> Value {
    json!({"object": "application", "entry": [{"id": "1061231232323117", "time": time,
        "changes": [{"field": field, "value": {"business_manager_id": business,
        "tp_config_id": "cfg-1"}}]}]})
}

/// The value of the first metric line starting with `prefix` (0 if none).
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_metric(env: &Env, prefix: &str, at_least: f64) {
    eventually(
        Duration::from_secs(15),
        &format!("{prefix} >= {at_least}"),
        || async { (metric(&env.metrics(0).await, prefix) >= at_least).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_finish_before_the_webhook_ends_with_its_number_on_the_installed_tenant() {
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
        .wait_tenant("524126980791429", "installed, token active", |t| {
            token_status(t) == Some("active") && t.subscribed
        })
        .await;
    assert_eq!(status(&t), "installed");
    assert_eq!(t.phone_number_ids, ["106540352242922"]);
    assert_eq!(t.owner_business_id.unwrap(), "942647313864044");
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 1);
    env.stop().await;
}

#[tokio::test]
async fn a_finish_after_the_webhook_adds_its_number_to_the_installed_tenant() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    env.deliver(&installed(
        "524126980791430",
        "942647313864045",
        1_763_900_000,
    ))
    .await;
    env.wait_tenant("524126980791430", "installed", |t| {
        token_status(t) == Some("active")
    })
    .await;
    forward(&env, finish("FINISH", "524126980791430", "106540352242923")).await;
    let t = env
        .wait_tenant("524126980791430", "its number", |t| {
            !t.phone_number_ids.is_empty()
        })
        .await;
    assert_eq!(status(&t), "installed");
    assert_eq!(token_status(&t), Some("active"));
    assert_eq!(t.phone_number_ids, ["106540352242923"]);
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
async fn integration_uninstall_revokes_every_tenant_of_the_business_in_event_time_order() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    let business = "942647313864099";
    for waba in ["801", "802"] {
        env.deliver(&installed(waba, business, 1000)).await;
    }
    env.deliver(&installed("803", "942647313864088", 1000))
        .await;
    env.deliver(&installed("804", business, 2500)).await;
    for waba in ["801", "802", "803", "804"] {
        env.wait_tenant(waba, "active", |t| token_status(t) == Some("active"))
            .await;
    }
    env.deliver(&integration("business_integration_install", business, 900))
        .await;

    env.deliver(&integration(
        "business_integration_uninstall",
        business,
        2000,
    ))
    .await;
    for waba in ["801", "802"] {
        let t = env
            .wait_tenant(waba, "uninstalled by the integration", |t| {
                status(t) == "uninstalled"
            })
            .await;
        assert_eq!(token_status(&t), Some("revoked"));
        assert_eq!(t.uninstalled_at, Some(2000));
        assert!(
            env.vault.token(&waba_id(waba)).await.unwrap().is_none(),
            "token destroyed"
        );
    }
    wait_metric(
        &env,
        r#"wa_worker_events_total{event="business_integration_uninstall",outcome="done"}"#,
        1.0,
    )
    .await;
    let newer = env.tenant("804").await.unwrap();
    assert_eq!(
        status(&newer),
        "installed",
        "installed after the integration uninstall"
    );
    assert_eq!(token_status(&newer), Some("active"));
    assert_eq!(
        status(&env.tenant("803").await.unwrap()),
        "installed",
        "another business"
    );
    assert_eq!(
        env.store
            .integration_installed_at(&crate::helpers::business(business))
            .await
            .unwrap(),
        Some(900)
    );

    // Late installs older than the integration uninstall: one of a known WABA, one of a WABA
    // never seen. Neither is current; no token is fetched for either.
    env.deliver(&installed("801", business, 1500)).await;
    env.deliver(&installed("805", business, 1800)).await;
    let late = env
        .wait_tenant("805", "late install recognised as older", |t| {
            status(t) == "uninstalled"
        })
        .await;
    assert_eq!(late.uninstalled_at, Some(2000));
    assert!(env.vault.token(&waba_id("805")).await.unwrap().is_none());
    // A real re-install, newer than the integration uninstall.
    env.deliver(&installed("802", business, 3000)).await;
    env.wait_tenant("802", "re-installed", |t| token_status(t) == Some("active"))
        .await;
    // The integration uninstall delivered again: a duplicate, nothing moves back.
    env.deliver(&integration(
        "business_integration_uninstall",
        business,
        2000,
    ))
    .await;
    wait_metric(&env, "wa_worker_duplicates_total", 1.0).await;
    wait_metric(
        &env,
        r#"wa_worker_events_total{event="PARTNER_APP_INSTALLED",outcome="done"}"#,
        7.0,
    )
    .await;
    assert_eq!(status(&env.tenant("801").await.unwrap()), "uninstalled");
    assert_eq!(status(&env.tenant("802").await.unwrap()), "installed");
    let fetched: Vec<String> = env
        .graph_calls("/system_user_access_tokens")
        .await
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        fetched.len(),
        5,
        "801, 802, 803, 804 and 802's re-install; none for a late install: {fetched:?}"
    );
    env.stop().await;
}
