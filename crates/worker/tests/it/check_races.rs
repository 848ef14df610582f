//! Tenant checks racing the tenant or each other: an uninstall landing mid-check (wiremock
//! for Graph) leaves nothing of the check behind, a token refreshed then refused is
//! announced invalid, a check of a tenant uninstalled meanwhile changes nothing, and two
//! workers never check one tenant at once (graph-sim).

use std::time::Duration;

use serde_json::json;
use wa_store::{Attention, TokenStatus};
use wa_testkit::Tapped;

use crate::{graph_mock::*, helpers::*, sim::*};

/// A Graph answer held back until the test lets it go: tells the test the request arrived,
/// then waits (on wiremock's own server thread) for the go.
struct Gate {
    arrived: std::sync::mpsc::SyncSender<()>,
    go: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    reply: wiremock::ResponseTemplate,
}

impl wiremock::Respond for Gate {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let _ = self.arrived.try_send(());
        if let Ok(go) = self.go.lock() {
            let _ = go.recv_timeout(Duration::from_secs(30));
        }
        self.reply.clone()
    }
}

#[tokio::test]
async fn a_tenant_uninstalled_mid_check_is_left_as_the_uninstall_left_it() {
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAbusiness-never-stored").await;
    let (arrived, arrival) = std::sync::mpsc::sync_channel(1);
    let (go, gate) = std::sync::mpsc::channel();
    // debug_token says the token is invalid, once the uninstall has landed.
    let gate = Gate {
        arrived,
        go: std::sync::Mutex::new(gate),
        reply: token_valid(false),
    };
    debug_token(&env, gate).await;
    let id = seed_held(&env, "7951", "7950", "EAAbusiness-held-at-the-check").await;
    let tap = tap(&env).await;
    env.spawn_worker().await;

    queue(&env, &["7951"]).await;
    tokio::task::spawn_blocking(move || arrival.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the check asked debug_token");
    env.store
        .apply_uninstall(&wa_store::Uninstall {
            waba_id: id.clone(),
            owner_business_id: None,
            event_time: 200,
        })
        .await
        .unwrap();
    let uninstalled = env.tenant("7951").await.unwrap();
    go.send(()).unwrap();

    wait_checks(&env, 0, "skipped", 1.0).await;
    assert_eq!(env.tenant("7951").await.unwrap(), uninstalled);
    assert!(held(&env, "7951").await.is_none(), "no token stored");
    // Anything the check published is in the tap's queue before this.
    tap.put(br#"{"type":"fence"}"#).await;
    let received = tap
        .wait(Duration::from_secs(15), "fence", |r: &[Tapped]| {
            r.iter().any(|m| m.json()["type"] == "fence")
        })
        .await;
    let kinds: Vec<_> = received.iter().map(|m| m.json()["type"].clone()).collect();
    assert_eq!(kinds, [json!("fence")], "no event for the check");
    assert!(env.graph_calls("/subscribed_apps").await.is_empty());
    assert!(
        env.graph_calls("/system_user_access_tokens")
            .await
            .is_empty()
    );
    env.stop().await;
}

#[tokio::test]
async fn a_token_refreshed_then_refused_is_announced_invalid() {
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAbusiness-refreshed-then-refused").await;
    debug_token(&env, token_valid(true)).await;
    refuse_token_on_use(&env, "7961").await;
    let id = seed_held(&env, "7961", "7960", "EAAbusiness-invalid-before").await;
    let invalid = wa_store::CheckFindings {
        install_time: 100,
        checked_at: 150,
        invalid: true,
        expires_at: None,
        subscribed: None,
        attention: vec![Attention::TokenInvalid],
        phone_number_ids: None,
    };
    assert!(
        wa_testkit::record_check(&env.store, &id, &invalid)
            .await
            .unwrap()
    );
    let tap = tap(&env).await;
    env.spawn_worker().await;

    queue(&env, &["7961"]).await;
    wait_checks(&env, 0, "attention", 1.0).await;
    let t = env.tenant("7961").await.unwrap();
    assert_eq!(t.token.status, Some(TokenStatus::Invalid));
    assert!(held(&env, "7961").await.is_none());
    let announced = event(&tap, "tenant.token_invalid").await;
    assert_eq!(announced["tenant"]["token"]["status"], "invalid");
    env.stop().await;
}

#[tokio::test]
async fn a_check_of_a_tenant_uninstalled_meanwhile_changes_nothing() {
    let mut env = spawn_env().await;
    let sim = Sim::start().await;
    sim.seed(&env, "7701", "7700", 100).await;
    sim.token_state("7700", "invalid").await;
    queue(&env, &["7701"]).await;
    env.store
        .apply_uninstall(&wa_store::Uninstall {
            waba_id: waba_id("7701"),
            owner_business_id: None,
            event_time: 200,
        })
        .await
        .unwrap();
    let before = env.tenant("7701").await.unwrap();

    let config = sim.worker_config(&env);
    env.spawn_worker_with(config).await;
    wait_checks(&env, 0, "skipped", 1.0).await;
    assert_eq!(env.tenant("7701").await.unwrap(), before);
    assert!(held(&env, "7701").await.is_none());
    assert_eq!(sim.counts().await["debug_token"], 0, "Graph not even asked");
    env.stop().await;
}

#[tokio::test]
async fn two_workers_never_check_one_tenant_at_once() {
    let mut env = spawn_env().await;
    let sim = Sim::start().await;
    sim.seed(&env, "7801", "7800", 100).await;
    for _ in 0..2 {
        let config = sim.worker_config(&env);
        env.spawn_worker_with(config).await;
    }
    let checks = 12;
    queue(&env, &["7801"; 12]).await;
    eventually(Duration::from_secs(30), "every check done", || async {
        let mut done = 0.0;
        for w in 0..2 {
            let text = env.metrics(w).await;
            done += metric(&text, "wa_worker_tenant_checks_total{outcome=\"healthy\"}");
        }
        (done >= f64::from(checks)).then_some(())
    })
    .await;
    // Each check reads the subscription, then the phone numbers: one check at a time means
    // the calls on this WABA strictly alternate.
    let mut calls: Vec<(u64, String)> = Vec::new();
    for route in ["subscribed_apps", "phone_numbers"] {
        for c in sim.received(route).await {
            calls.push((c["seq"].as_u64().unwrap(), route.to_owned()));
        }
    }
    calls.sort();
    assert_eq!(calls.len(), 2 * 12);
    for (i, (_, route)) in calls.iter().enumerate() {
        let expected = if i % 2 == 0 {
            "subscribed_apps"
        } else {
            "phone_numbers"
        };
        assert_eq!(route, expected, "call {i} of {calls:?}");
    }
    env.stop().await;
}
