//! Tenant events when changes race or a batch is only partly taken: each event's record agrees
//! with its type, and a fan-out's retry publishes every event again under its first id.

use std::{collections::HashSet, time::Duration};

use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::{
    event_schema::assert_documented,
    events::{
        TOKEN, WAIT, kind, kinds, one_message_queue, retrying_env, started, through_sentinel,
    },
    helpers::*,
    integration::{integration_uninstall_then_install, integration_uninstalled},
};

#[tokio::test]
async fn an_install_overtaken_by_a_newer_uninstall_publishes_no_installed_event_for_an_uninstalled_tenant()
 {
    let mut env = spawn_env().await;
    // Graph's answer that settles the install (same second as its business's integration
    // uninstall) is slow: meanwhile a newer uninstall of the WABA is applied and published.
    Mock::given(method("POST"))
        .and(path_regex(r"/system_user_access_tokens$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(4))
                .set_body_json(json!({"access_token": TOKEN})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.graph)
        .await;
    graph_ok(&env, TOKEN).await;
    let tap = tap(&env).await;
    env.spawn_worker().await;
    let (business, waba) = ("942647313864011", "495709166956011");
    integration_uninstall_then_install(&env, business, waba).await;
    eventually(WAIT, "Graph asked to settle the install", || async {
        (!env
            .graph_calls("/system_user_access_tokens")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    env.deliver(&uninstalled(waba, business, 150)).await;
    tap.wait(WAIT, "the newer uninstall's event", |r| {
        r.iter().any(|m| kind(m) == "tenant.uninstalled")
    })
    .await;

    // Graph answers "installed"; the install finds the tenant uninstalled since: stale.
    wait_metric(&env, "wa_worker_stale_total", 1.0).await;
    let received = through_sentinel(&env, &tap).await;
    assert!(kinds(&received).contains(&"tenant.uninstalled".to_owned()));
    for m in &received {
        // A `tenant.installed` about the uninstalled tenant would break the schema's promise.
        assert_documented(&m.json());
    }
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn a_fan_out_partly_confirmed_is_retried_and_re_emits_every_event_under_its_first_id() {
    let mut env = retrying_env().await;
    // Room for one `tenant.uninstalled`, then refused: of the two the uninstall publishes at
    // once, the broker takes the first and nacks the second.
    let mut tap = one_message_queue(&env, "tenant.uninstalled").await;
    env.spawn_worker().await;
    let business = "942647313864012";
    for waba in ["821", "822"] {
        env.deliver(&installed(waba, business, 1000)).await;
        env.wait_tenant(waba, "token ready", |t| token_status(t) == Some("active"))
            .await;
    }
    env.deliver(&integration(
        "business_integration_uninstall",
        business,
        2000,
    ))
    .await;
    wait_metric(&env, r#"wa_worker_retries_total{tier="200ms"}"#, 1.0).await;
    let done = r#"wa_worker_events_total{event="business_integration_uninstall",outcome="done"}"#;
    assert_eq!(
        metric(&env.metrics(0).await, done),
        0.0,
        "not acked while one of its events is refused"
    );

    tap.start().await;
    tap.wait(WAIT, "both WABAs' uninstalls", |r| {
        r.iter()
            .map(|m| m.json()["waba_id"].clone())
            .collect::<HashSet<_>>()
            .len()
            == 2
    })
    .await;
    wait_metric(&env, done, 1.0).await;
    let received = tap.received();
    let ids: HashSet<(String, Option<String>)> = received
        .iter()
        .map(|m| {
            let waba = m.json()["waba_id"].as_str().unwrap().to_owned();
            (waba, m.message_id.clone())
        })
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "one id per WABA, the same on every copy: {ids:?}"
    );
    assert!(env.dead_letters().await.is_empty());
    tap.close().await;
    env.stop().await;
}

#[tokio::test]
async fn an_integration_uninstall_publishes_nothing_for_a_waba_uninstalled_before_it() {
    let (business, gone, live) = ("942647313864013", "831", "832");
    let (env, tap) = started().await;
    for waba in [gone, live] {
        env.deliver(&installed(waba, business, 1000)).await;
    }
    tap.wait(WAIT, "both tokens ready", |r| {
        r.iter().filter(|m| kind(m) == "tenant.token_ready").count() == 2
    })
    .await;
    env.deliver(&uninstalled(gone, business, 1500)).await;
    tap.wait(WAIT, "the first WABA's uninstall", |r| {
        r.iter().any(|m| kind(m) == "tenant.uninstalled")
    })
    .await;

    // Months later the business removes the integration: only the WABA still installed
    // changes; the other was uninstalled long before.
    integration_uninstalled(&env, business, 2000).await;
    let received = through_sentinel(&env, &tap).await;
    let uninstalled: Vec<(String, i64)> = received
        .iter()
        .filter(|m| kind(m) == "tenant.uninstalled")
        .map(|m| {
            let body = m.json();
            (
                body["waba_id"].as_str().unwrap().to_owned(),
                body["occurred_at"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        uninstalled,
        [(gone.to_owned(), 1500), (live.to_owned(), 2000)],
        "one tenant.uninstalled per tenant that changed"
    );
    tap.close().await;
    env.stop().await;
}
