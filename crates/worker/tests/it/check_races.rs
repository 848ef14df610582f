//! Tenant checks racing the tenant (wiremock for Graph): an uninstall landing mid-check
//! leaves nothing of the check behind, and a token refreshed then refused is announced
//! invalid.

use std::time::Duration;

use serde_json::json;
use wa_store::{Attention, TokenStatus};
use wa_testkit::Tapped;

use crate::{
    checks::{event, tap},
    helpers::*,
    sim::*,
};

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
    use wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path},
    };
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAbusiness-never-stored").await;
    let (arrived, arrival) = std::sync::mpsc::sync_channel(1);
    let (go, gate) = std::sync::mpsc::channel();
    // debug_token says the token is invalid, once the uninstall has landed.
    Mock::given(method("GET"))
        .and(path("/v22.0/debug_token"))
        .respond_with(Gate {
            arrived,
            go: std::sync::Mutex::new(gate),
            reply: ResponseTemplate::new(200).set_body_json(
                json!({"data": {"app_id": APP_ID, "is_valid": false, "expires_at": 0}}),
            ),
        })
        .mount(&env.graph)
        .await;
    let id = waba_id("7951");
    env.store
        .apply_install(&wa_store::Install {
            waba_id: id.clone(),
            owner_business_id: business("7950"),
            partner_app_id: None,
            solution_id: None,
            solution_partner_business_ids: Vec::new(),
            event_time: 100,
        })
        .await
        .unwrap();
    let token = secrecy::SecretString::from("EAAbusiness-held-at-the-check");
    assert!(env.vault.store_token(&id, &token, 100, 100).await.unwrap());
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
    use wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path},
    };
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAbusiness-refreshed-then-refused").await;
    Mock::given(method("GET"))
        .and(path("/v22.0/debug_token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"data": {"app_id": APP_ID, "is_valid": true, "expires_at": 0}}),
            ),
        )
        .mount(&env.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v22.0/7961/subscribed_apps"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: the session has been invalidated",
            "type": "OAuthException", "code": 190, "error_subcode": 460, "fbtrace_id": "B"}})))
        .mount(&env.graph)
        .await;
    let id = waba_id("7961");
    env.store
        .apply_install(&wa_store::Install {
            waba_id: id.clone(),
            owner_business_id: business("7960"),
            partner_app_id: None,
            solution_id: None,
            solution_partner_business_ids: Vec::new(),
            event_time: 100,
        })
        .await
        .unwrap();
    let token = secrecy::SecretString::from("EAAbusiness-invalid-before");
    assert!(env.vault.store_token(&id, &token, 100, 100).await.unwrap());
    let invalid = wa_store::CheckFindings {
        install_time: 100,
        checked_at: 150,
        invalid: true,
        expires_at: None,
        subscribed: None,
        attention: vec![Attention::TokenInvalid],
        phone_number_ids: None,
    };
    assert!(env.store.record_check(&id, &invalid).await.unwrap());
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
