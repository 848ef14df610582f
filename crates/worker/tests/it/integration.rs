//! The business integration webhooks (`application.business_integration_install|uninstall`)
//! through `wa.account_update`.

use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "business-token-integration-tests";

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

/// An integration uninstall and an install of one of the business's WABAs, both at
/// `entry.time` 100, in that order.
pub(crate) async fn integration_uninstall_then_install(env: &Env, business: &str, waba: &str) {
    integration_uninstalled(env, business, 100).await;
    env.deliver(&installed(waba, business, 100)).await;
}

/// Delivers the first business integration uninstall of the test, of `business` at `time`,
/// and waits until it is done.
pub(crate) async fn integration_uninstalled(env: &Env, business: &str, time: i64) {
    env.deliver(&integration(
        "business_integration_uninstall",
        business,
        time,
    ))
    .await;
    wait_metric(
        env,
        r#"wa_worker_events_total{event="business_integration_uninstall",outcome="done"}"#,
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_same_second_integration_uninstall_and_install_graph_says_installed() {
    let mut env = spawn_env().await;
    graph_ok(&env, TOKEN).await;
    env.spawn_worker().await;
    integration_uninstall_then_install(&env, "942647313864077", "811").await;
    let t = env
        .wait_tenant("811", "installed: Graph says so for this WABA", |t| {
            token_status(t) == Some("active")
        })
        .await;
    assert_eq!(status(&t), "installed");
    assert!(env.vault.token(&waba_id("811")).await.unwrap().is_some());
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_same_second_integration_uninstall_and_install_graph_says_not_installed() {
    use wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path_regex},
    };
    let mut env = spawn_env().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/system_user_access_tokens$"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: The user has not authorized application",
            "type": "OAuthException", "code": 190, "error_subcode": 458, "fbtrace_id": "T1"}})))
        .mount(&env.graph)
        .await;
    env.spawn_worker().await;
    integration_uninstall_then_install(&env, "942647313864066", "812").await;
    let t = env
        .wait_tenant("812", "uninstalled: Graph says 190/458", |t| {
            status(t) == "uninstalled"
        })
        .await;
    assert_eq!(t.uninstalled_at, Some(100));
    assert_ne!(token_status(&t), Some("active"));
    assert!(env.vault.token(&waba_id("812")).await.unwrap().is_none());
    assert_eq!(
        env.graph_calls("/system_user_access_tokens").await.len(),
        1,
        "Graph was asked, once"
    );
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}
