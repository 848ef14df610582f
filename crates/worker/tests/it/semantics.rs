//! The tenant state when Meta's events are odd, foreign or late: another app's events, owner
//! change, reinstall, an uninstall that arrives before its install, superseded Graph
//! failures, and same-second ties settled by Graph.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use secrecy::ExposeSecret;
use serde_json::json;
use wiremock::{
    Mock, Request, Respond, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use crate::helpers::*;

const WABA: &str = "495709166956424";
const OWNER: &str = "942647313864044";
const OTHER_APP: &str = "2222222222222222";

/// An install or uninstall of `waba` naming `app`.
fn for_app(event: &str, waba: &str, app: &str, time: i64) -> serde_json::Value {
    webhook(
        PARTNER,
        time,
        json!({"event": event, "waba_info": {
            "waba_id": waba, "owner_business_id": OWNER, "partner_app_id": app}}),
    )
}

/// Subscriptions succeed.
async fn subscribe_ok(env: &Env) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/subscribed_apps$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&env.graph)
        .await;
}

/// Subscriptions and phone number listings succeed (token fetches are mounted by each test).
async fn graph_rest_ok(env: &Env) {
    subscribe_ok(env).await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/v22\.0/[0-9]+/phone_numbers$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&env.graph)
        .await;
}

/// Graph's answer when the app is not installed: 190, subcode 458.
fn not_installed() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "Error validating access token: The user has not authorized application",
        "type": "OAuthException", "code": 190, "error_subcode": 458, "fbtrace_id": "T1"}}))
}

/// A new token on every fetch: `token-1`, `token-2`, ...
struct FreshTokens(AtomicUsize);

impl Respond for FreshTokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(json!({"access_token": format!("token-{n}")}))
    }
}

/// An uninstall of [`WABA`] at 100, then an install at 100 that Graph settles as stale: the
/// tenant afterwards.
async fn install_tied_with_uninstall(env: &Env) -> wa_store::TenantRecord {
    env.deliver(&uninstalled(WABA, OWNER, 100)).await;
    env.wait_tenant(WABA, "uninstalled", |t| status(t) == "uninstalled")
        .await;
    env.deliver(&installed(WABA, OWNER, 100)).await;
    wait_metric(env, "wa_worker_stale_total", 1.0).await;
    env.tenant(WABA).await.unwrap()
}

/// Every token fetch succeeds, with a new token each time.
async fn fresh_tokens(env: &Env) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/system_user_access_tokens$"))
        .respond_with(FreshTokens(AtomicUsize::new(0)))
        .mount(&env.graph)
        .await;
}

async fn held_token(env: &Env, waba: &str) -> Option<String> {
    env.vault
        .token(&waba_id(waba))
        .await
        .unwrap()
        .map(|t| t.expose_secret().to_owned())
}

#[tokio::test]
async fn another_apps_install_and_uninstall_change_no_tenant() {
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAG-ours").await;
    env.spawn_worker().await;
    let m = env.metrics(0).await;
    for event in ["PARTNER_APP_INSTALLED", "PARTNER_APP_UNINSTALLED"] {
        let line = format!("wa_worker_other_app_events_total{{event=\"{event}\"}} 0");
        assert!(
            m.lines().any(|l| l == line),
            "{line} exported from the start"
        );
    }
    env.deliver(&installed(WABA, OWNER, 100)).await;
    env.wait_tenant(WABA, "ours installed", |t| {
        token_status(t) == Some("active")
    })
    .await;

    env.deliver(&for_app("PARTNER_APP_UNINSTALLED", WABA, OTHER_APP, 200))
        .await;
    env.deliver(&for_app(
        "PARTNER_APP_INSTALLED",
        "495709166956425",
        OTHER_APP,
        200,
    ))
    .await;
    for event in ["PARTNER_APP_INSTALLED", "PARTNER_APP_UNINSTALLED"] {
        wait_metric(
            &env,
            &format!("wa_worker_other_app_events_total{{event=\"{event}\"}}"),
            1.0,
        )
        .await;
    }
    let t = env.tenant(WABA).await.unwrap();
    assert_eq!(status(&t), "installed");
    assert_eq!(
        t.last_event_time, 100,
        "another app's event applied nothing"
    );
    assert_eq!(held_token(&env, WABA).await.as_deref(), Some("EAAG-ours"));
    assert!(env.tenant("495709166956425").await.is_none());
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 1);
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn an_owner_change_fetches_the_new_owners_token_and_destroys_the_old_one() {
    let mut env = spawn_env().await;
    for (owner, token) in [
        ("100000000000001", "EAAG-owner-A"),
        ("100000000000002", "EAAG-owner-B"),
    ] {
        Mock::given(method("POST"))
            .and(path(format!("/v22.0/{owner}/system_user_access_tokens")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": token})))
            .mount(&env.graph)
            .await;
    }
    graph_rest_ok(&env).await;
    env.spawn_worker().await;
    env.deliver(&installed(WABA, "100000000000001", 100)).await;
    env.wait_tenant(WABA, "A's token", |t| {
        token_status(t) == Some("active") && t.subscribed
    })
    .await;
    assert_eq!(
        held_token(&env, WABA).await.as_deref(),
        Some("EAAG-owner-A")
    );

    env.deliver(&installed(WABA, "100000000000002", 200)).await;
    let t = env
        .wait_tenant(WABA, "B's token", |t| {
            t.installed_at == Some(200) && token_status(t) == Some("active") && t.subscribed
        })
        .await;
    assert_eq!(t.owner_business_id.unwrap(), "100000000000002");
    assert_eq!(
        held_token(&env, WABA).await.as_deref(),
        Some("EAAG-owner-B")
    );
    let fetches = env.graph_calls("/system_user_access_tokens").await;
    assert_eq!(fetches.len(), 2);
    assert_eq!(
        fetches[1].url.path(),
        "/v22.0/100000000000002/system_user_access_tokens"
    );
    assert_eq!(
        env.graph_calls("/subscribed_apps").await.len(),
        2,
        "subscribed again"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_reinstall_fetches_a_new_token_and_subscribes_again() {
    let mut env = spawn_env().await;
    fresh_tokens(&env).await;
    graph_rest_ok(&env).await;
    env.spawn_worker().await;
    env.deliver(&installed(WABA, OWNER, 100)).await;
    env.wait_tenant(WABA, "installed", |t| {
        token_status(t) == Some("active") && t.subscribed
    })
    .await;
    env.deliver(&uninstalled(WABA, OWNER, 150)).await;
    env.wait_tenant(WABA, "uninstalled", |t| status(t) == "uninstalled")
        .await;
    assert_eq!(held_token(&env, WABA).await, None);
    env.deliver(&installed(WABA, OWNER, 200)).await;
    let t = env
        .wait_tenant(WABA, "reinstalled", |t| {
            t.installed_at == Some(200) && token_status(t) == Some("active") && t.subscribed
        })
        .await;
    assert_eq!(status(&t), "installed");
    assert_eq!(held_token(&env, WABA).await.as_deref(), Some("token-2"));
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 2);
    assert_eq!(env.graph_calls("/subscribed_apps").await.len(), 2);
    env.stop().await;
}

#[tokio::test]
async fn a_bare_uninstall_before_its_install_waits_in_the_delay_tiers_and_wins() {
    // Tiers long enough for the install to land before the last one.
    let mut env = spawn_env_with_delays(vec![
        Duration::from_secs(1),
        Duration::from_secs(2),
        Duration::from_secs(5),
    ])
    .await;
    graph_ok(&env, "EAAG-early").await;
    env.spawn_worker().await;
    env.deliver(&bare_uninstall(WABA, 200)).await;
    wait_metric(&env, "wa_worker_retries_total", 1.0).await;
    assert!(env.tenant(WABA).await.is_none(), "nothing applied yet");

    env.deliver(&installed(WABA, OWNER, 100)).await;
    let t = env
        .wait_tenant(WABA, "uninstalled after the retry", |t| {
            status(t) == "uninstalled" && t.uninstalled_at == Some(200)
        })
        .await;
    assert_ne!(token_status(&t), Some("active"));
    assert_eq!(held_token(&env, WABA).await, None, "no token held");
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

/// Answers the first token fetch with a permanent error, but only once the test opens the
/// gate (or after 20 s).
struct Gate(Mutex<mpsc::Receiver<()>>);

impl Respond for Gate {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let _ = self.0.lock().unwrap().recv_timeout(Duration::from_secs(20));
        ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#100) Invalid parameter", "type": "GraphMethodException",
            "code": 100, "fbtrace_id": "G1"}}))
    }
}

#[tokio::test]
async fn a_graph_failure_for_a_superseded_install_is_stale_not_dead_lettered() {
    let mut env = spawn_env().await;
    let (open, gate) = mpsc::channel();
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/system_user_access_tokens$"))
        .respond_with(Gate(Mutex::new(gate)))
        .mount(&env.graph)
        .await;
    env.spawn_worker().await;
    env.deliver(&installed(WABA, OWNER, 100)).await;
    env.wait_tenant(WABA, "installed, fetching", |t| status(t) == "installed")
        .await;
    env.deliver(&uninstalled(WABA, OWNER, 150)).await;
    env.wait_tenant(WABA, "uninstalled", |t| status(t) == "uninstalled")
        .await;
    open.send(()).unwrap();

    wait_metric(&env, "wa_worker_stale_total", 1.0).await;
    let m = env.metrics(0).await;
    assert_eq!(
        metric(&m, r#"wa_worker_token_fetches_total{outcome="permanent"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"wa_worker_events_total{event="PARTNER_APP_INSTALLED",outcome="done"}"#
        ),
        1.0
    );
    assert_eq!(metric(&m, "wa_worker_dlq_publishes_total"), 0.0);
    assert!(env.dead_letters().await.is_empty());
    let t = env.tenant(WABA).await.unwrap();
    assert_eq!(status(&t), "uninstalled");
    assert_eq!(
        t.token.error, None,
        "the failure is not pinned on the tenant"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_tie_is_settled_by_graph_saying_installed() {
    let mut env = spawn_env().await;
    graph_ok(&env, "EAAG-tie").await;
    env.spawn_worker().await;
    env.deliver(&uninstalled(WABA, OWNER, 100)).await;
    env.wait_tenant(WABA, "uninstalled", |t| status(t) == "uninstalled")
        .await;
    env.deliver(&installed(WABA, OWNER, 100)).await;
    let t = env
        .wait_tenant(WABA, "installed: Graph gave a token", |t| {
            status(t) == "installed" && token_status(t) == Some("active")
        })
        .await;
    assert_eq!(t.installed_at, Some(100));
    assert_eq!(held_token(&env, WABA).await.as_deref(), Some("EAAG-tie"));

    // The other way round: an uninstall in the same second as the install in effect.
    env.deliver(&bare_uninstall(WABA, 100)).await;
    wait_metric(&env, "wa_worker_stale_total", 1.0).await;
    let t = env.tenant(WABA).await.unwrap();
    assert_eq!(
        status(&t),
        "installed",
        "Graph says installed: the install stands"
    );
    assert_eq!(held_token(&env, WABA).await.as_deref(), Some("EAAG-tie"));
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_tie_is_settled_by_graph_saying_not_installed() {
    let mut env = spawn_env().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/system_user_access_tokens$"))
        .respond_with(not_installed())
        .mount(&env.graph)
        .await;
    graph_rest_ok(&env).await;
    env.spawn_worker().await;
    let t = install_tied_with_uninstall(&env).await;
    assert_eq!(
        status(&t),
        "uninstalled",
        "Graph says 190/458: the uninstall stands"
    );
    assert_eq!(held_token(&env, WABA).await, None);
    assert_eq!(env.graph_calls("/system_user_access_tokens").await.len(), 1);
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_tie_is_settled_for_this_waba_not_for_the_business() {
    // The owner has the app (another WABA of its own): the token fetch succeeds. This WABA
    // refuses the token: the app is not installed on it.
    let mut env = spawn_env().await;
    fresh_tokens(&env).await;
    subscribe_ok(&env).await;
    Mock::given(method("GET"))
        .and(path(format!("/v22.0/{WABA}/phone_numbers")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {
            "message": "(#200) Permission error", "type": "OAuthException",
            "code": 200, "fbtrace_id": "P1"}})))
        .mount(&env.graph)
        .await;
    env.spawn_worker().await;

    // An install tied with the uninstall in effect.
    let t = install_tied_with_uninstall(&env).await;
    assert_eq!(
        status(&t),
        "uninstalled",
        "the business has the app, this WABA does not: the uninstall stands"
    );
    assert_eq!(held_token(&env, WABA).await, None);

    // An uninstall tied with the install in effect.
    let other = "495709166956426";
    Mock::given(method("GET"))
        .and(path(format!("/v22.0/{other}/phone_numbers")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .up_to_n_times(1)
        .mount(&env.graph)
        .await;
    env.deliver(&installed(other, OWNER, 300)).await;
    env.wait_tenant(other, "installed", |t| token_status(t) == Some("active"))
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v22.0/{other}/phone_numbers")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token", "type": "OAuthException",
            "code": 190, "error_subcode": 460, "fbtrace_id": "P2"}})))
        .mount(&env.graph)
        .await;
    env.deliver(&bare_uninstall(other, 300)).await;
    let t = env
        .wait_tenant(other, "uninstalled: Graph refused this WABA", |t| {
            status(t) == "uninstalled"
        })
        .await;
    assert_eq!(t.uninstalled_at, Some(300));
    assert_eq!(held_token(&env, other).await, None, "no token held");
    assert!(env.dead_letters().await.is_empty());
    env.stop().await;
}
