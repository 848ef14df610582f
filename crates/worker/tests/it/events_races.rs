//! Tenant events when changes race or a batch is only partly taken: each event's record agrees
//! with its type, and a fan-out's retry publishes every event again under its first id.

use std::collections::HashSet;

use crate::{
    events::{WAIT, one_message_queue, retrying_env},
    helpers::*,
};

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
