//! Settings that cannot work are refused at start (docs/REFERENCE.md, "Variables"): the
//! binary exits non-zero and its stderr names the variable. Every other setting of the run is
//! valid, so the refusal can only be the one under test. And a `wa.unrouted` an earlier
//! version declared without its bound stops the ingress with what to do, not a silent retry.

use std::time::Duration;
use tokio::process::Command;

use wa_broker::{
    BrokerConfig, BrokerError, Topology,
    lapin::{Connection, ConnectionProperties},
};
use wa_testkit::declare_unbounded_unrouted;

use crate::helpers::{amqp_url, run, serving, wa_onboard};

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// `wa-onboard worker` with every required setting valid, RabbitMQ and Redis unreachable
/// (nothing past the settings is reached in these tests).
fn worker() -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("worker")
        .env("WA_APP_SECRET", "settings-test-secret")
        .env("WA_SYSTEM_USER_ID", "61550000000001")
        .env("WA_APP_ID", "1061231232323117")
        .env("WA_SYSTEM_USER_TOKEN", "settings-test-token")
        .env("WA_TOKEN_KEY", KEY)
        .env("WA_METRICS_LISTEN", "127.0.0.1:0")
        .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("REDIS_URL", "redis://127.0.0.1:1/0");
    cmd
}

/// `wa-onboard ingress` with every required setting valid.
fn ingress() -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("ingress")
        .env("WA_APP_SECRET", "settings-test-secret")
        .env("WA_VERIFY_TOKEN", "settings-test-verify")
        .env("WA_LISTEN", "127.0.0.1:0")
        .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f");
    cmd
}

/// Runs `cmd` with `var=value` and asserts the refusal names `var`.
async fn refused(mut cmd: Command, var: &str, value: &str) {
    let out = run(cmd.env(var, value)).await;
    assert!(
        out.code.is_some_and(|c| c != 0),
        "{var}={value:?} was accepted: {out:?}"
    );
    assert!(
        out.stderr.contains(var),
        "{var}={value:?}: stderr does not name the variable:\n{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_empty_retry_delay_list_is_refused() {
    refused(worker(), "WA_RETRY_DELAYS", "").await;
}

#[tokio::test]
async fn a_malformed_retry_delay_list_is_refused() {
    for bad in ["5s,,30s", "5s,", "0s", "5s,5s", "30d", "5 sheep"] {
        refused(worker(), "WA_RETRY_DELAYS", bad).await;
    }
}

#[tokio::test]
async fn a_prefetch_of_zero_is_refused() {
    // 0 is "unlimited" in AMQP; 1 cannot be split between the two queues.
    for bad in ["0", "1", "-3", "many"] {
        refused(worker(), "WA_PREFETCH", bad).await;
    }
}

#[tokio::test]
async fn a_concurrency_of_zero_is_refused() {
    for bad in ["0", "5000"] {
        refused(worker(), "WA_CONCURRENCY", bad).await;
    }
}

#[tokio::test]
async fn a_dedupe_ttl_shorter_than_metas_retries_is_refused() {
    for bad in ["0s", "1h", "6d", "400d"] {
        refused(worker(), "WA_DEDUPE_TTL", bad).await;
    }
}

#[tokio::test]
async fn a_zero_or_absurd_claim_lease_is_refused() {
    for bad in ["0s", "10ms", "2h"] {
        refused(worker(), "WA_CLAIM_LEASE", bad).await;
    }
}

#[tokio::test]
async fn a_zero_body_limit_is_refused() {
    for bad in ["0", "100", "1000000000"] {
        refused(ingress(), "WA_MAX_BODY_BYTES", bad).await;
    }
}

#[tokio::test]
async fn a_zero_publish_channel_pool_is_refused() {
    refused(ingress(), "WA_PUBLISH_CHANNELS", "0").await;
}

#[tokio::test]
async fn unauthenticated_bounds_that_cannot_work_are_refused() {
    for bad in ["0", "many", "70000"] {
        refused(ingress(), "WA_MAX_CONNECTIONS", bad).await;
    }
    for bad in ["0", "2000000000"] {
        refused(ingress(), "WA_MAX_UNVERIFIED_BYTES", bad).await;
    }
    // Less room for unverified bodies than one body may take.
    let mut small = ingress();
    small.env("WA_MAX_BODY_BYTES", "1048576");
    refused(small, "WA_MAX_UNVERIFIED_BYTES", "65536").await;
}

#[tokio::test]
async fn an_unrouted_bound_that_cannot_work_is_refused() {
    for cmd in [ingress, worker] {
        refused(cmd(), "WA_UNROUTED_MAX_LENGTH", "0").await;
        for bad in ["0s", "1s", "60d"] {
            refused(cmd(), "WA_UNROUTED_TTL", bad).await;
        }
    }
}

/// Removes every queue and exchange of `topology`.
async fn delete(topology: &Topology) {
    if let Ok(connection) = Connection::connect(&amqp_url(), ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        let _ = topology.delete(&channel).await;
    }
}

#[tokio::test]
async fn the_unrouted_bound_given_to_the_ingress_is_the_one_its_queue_carries() {
    let prefix = format!("set{:016x}", rand::random::<u64>());
    let mut cmd = ingress();
    cmd.env("AMQP_URL", amqp_url())
        .env("WA_AMQP_PREFIX", &prefix)
        .env("WA_UNROUTED_MAX_LENGTH", "5")
        .env("WA_UNROUTED_TTL", "2h");
    let mut ingress = serving(cmd).await;
    ingress.assert_running();

    // Declaring again with the same bound is accepted; with the defaults, refused.
    let mut same = Topology::new(prefix.clone());
    same.unrouted_max_length = 5;
    same.unrouted_ttl = Duration::from_secs(7200);
    let declared = BrokerConfig::new(&amqp_url(), same.clone())
        .expect("AMQP_URL")
        .declare_once()
        .await;
    let defaults = BrokerConfig::new(&amqp_url(), Topology::new(prefix.clone()))
        .expect("AMQP_URL")
        .declare_once()
        .await;
    ingress.kill().await;
    delete(&same).await;
    declared.expect("the queue carries x-max-length 5 and x-message-ttl 2h");
    assert!(
        matches!(defaults, Err(BrokerError::Inequivalent { .. })),
        "{defaults:?}"
    );
}

#[tokio::test]
async fn an_unrouted_queue_without_its_bound_stops_the_ingress_with_what_to_do() {
    let prefix = format!("set{:016x}", rand::random::<u64>());
    let topology = Topology::new(prefix.clone());
    declare_unbounded_unrouted(&amqp_url(), &topology.unrouted()).await;

    let out = run(ingress()
        .env("AMQP_URL", amqp_url())
        .env("WA_AMQP_PREFIX", &prefix))
    .await;

    delete(&topology).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    for expected in [
        format!("queue `{prefix}.unrouted` exists with other arguments"),
        "x-max-length = 100000".to_owned(),
        "x-message-ttl = 604800000".to_owned(),
        "WA_UNROUTED_MAX_LENGTH".to_owned(),
        format!("rabbitmqctl delete_queue {prefix}.unrouted"),
        "docs/OPERATIONS.md".to_owned(),
    ] {
        assert!(
            out.stderr.contains(&expected),
            "`{expected}` missing:\n{}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn the_worker_refuses_a_missing_or_malformed_app_id() {
    refused(worker(), "WA_APP_ID", "app-1061231232323117").await;
    let mut cmd = worker();
    cmd.env_remove("WA_APP_ID");
    let out = run(&mut cmd).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("WA_APP_ID is required"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_refresh_window_of_no_time_or_beyond_a_token_life_is_refused() {
    // Under two days could let a token expire between two daily checks; 60 days or more
    // would fetch a 60-day token at every check.
    for bad in ["0s", "10m", "1h", "47h", "60d", "soon"] {
        refused(worker(), "WA_TOKEN_REFRESH_BEFORE", bad).await;
    }
}
