//! `reconcile [--all | WABA_ID...]` as a child process: exactly the installed tenants (or
//! the named ones) queued on `wa.tenant_checks`, confirmed before it exits; usage errors.

use std::{collections::BTreeSet, time::Duration};

use serde_json::Value;
use wa_broker::{
    Broker, BrokerConfig, Topology,
    lapin::options::{BasicGetOptions, QueueDeleteOptions},
};

use crate::helpers::*;

/// `wa-onboard reconcile ARGS` on `prefix` and `t`'s Redis prefix.
fn reconcile(t: &TestTenants, prefix: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = wa_onboard();
    cmd.arg("reconcile")
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("REDIS_URL", redis_url())
        .env("WA_AMQP_PREFIX", prefix)
        .env("WA_REDIS_PREFIX", &t.prefix);
    cmd
}

/// Takes every message from `prefix`'s `wa.tenant_checks`: their bodies, then deletes the
/// topology.
async fn drain(prefix: &str) -> Vec<Value> {
    let topology = Topology::new(prefix);
    let stop = tokio_util::sync::CancellationToken::new();
    let broker = Broker::start(
        BrokerConfig::new(&amqp_url(), topology.clone()).expect("amqp"),
        stop.clone(),
    );
    assert!(broker.wait_ready(Duration::from_secs(10)).await, "RabbitMQ");
    let channel = broker.open_channel().await.expect("channel");
    let mut bodies = Vec::new();
    while let Some(m) = channel
        .basic_get(
            topology.tenant_checks_queue().as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .expect("get")
    {
        assert!(
            m.delivery.properties.message_id().is_some(),
            "each check has an id"
        );
        bodies.push(serde_json::from_slice(&m.delivery.data).expect("JSON body"));
    }
    for queue in topology.queues() {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    stop.cancel();
    bodies
}

fn prefix() -> String {
    format!("rc{:016x}", rand::random::<u64>())
}

#[tokio::test]
async fn reconcile_all_queues_exactly_the_installed_tenants_confirmed() {
    let t = TestTenants::new().await;
    for waba in ["510000000000001", "510000000000002", "510000000000003"] {
        t.install(&install(waba, "520000000000001", 1_730_000_000))
            .await;
    }
    t.install(&install(
        "510000000000004",
        "520000000000001",
        1_730_000_000,
    ))
    .await;
    t.store
        .apply_uninstall(&wa_store::Uninstall {
            waba_id: waba("510000000000004"),
            owner_business_id: None,
            event_time: 1_730_000_100,
        })
        .await
        .expect("uninstall");
    let amqp = prefix();

    let out = run(&mut reconcile(&t, &amqp, &["--all"])).await;

    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "queued 3 checks");
    let bodies = drain(&amqp).await;
    let wabas: BTreeSet<&str> = bodies
        .iter()
        .filter_map(|b| b["waba_id"].as_str())
        .collect();
    assert_eq!(
        wabas,
        BTreeSet::from(["510000000000001", "510000000000002", "510000000000003"])
    );
    assert!(
        bodies.iter().all(|b| b["reason"] == "scheduled"),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn reconcile_named_tenants_queues_one_check_each() {
    let t = TestTenants::new().await;
    let amqp = prefix();
    let out = run(&mut reconcile(
        &t,
        &amqp,
        &["530000000000001", "530000000000002"],
    ))
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let bodies = drain(&amqp).await;
    assert_eq!(bodies.len(), 2);
    assert!(bodies.iter().all(|b| b["reason"] == "requested"));
}

#[tokio::test]
async fn reconcile_without_a_target_or_with_a_bad_id_is_a_usage_error() {
    let t = TestTenants::new().await;
    let amqp = prefix();
    let none = run(&mut reconcile(&t, &amqp, &[])).await;
    assert_eq!(none.code, Some(2), "{none:?}");
    assert!(none.stderr.contains("--all"), "{}", none.stderr);
    let bad = run(&mut reconcile(&t, &amqp, &["12/34"])).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    let both = run(&mut reconcile(&t, &amqp, &["--all", "1"])).await;
    assert_eq!(both.code, Some(2), "{both:?}");
    drain(&amqp).await;
}
