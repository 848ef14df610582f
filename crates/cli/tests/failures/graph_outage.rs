//! The Graph API down for a while (graph-sim failing every call transiently: 500, code 2,
//! `is_transient`), then back: installs that arrived during the outage outlast the worker's
//! in-process retries, wait in the delay tiers, and complete once Graph answers again, each
//! business's token fetched once; nothing reaches the DLQ.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

/// How many installs arrive while Graph is down.
const INSTALLS: u32 = 40;
/// How long Graph stays down: longer than the worker's in-process retry budget (5 s), so
/// every install goes through at least one delay tier.
const OUTAGE: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "failure test: run serially by scripts/test.sh"]
async fn graph_down_for_a_while_then_back_completes_installs_through_the_delay_tiers() {
    let stack = Stack::start(Options::default()).await;
    stack.graph_mode(json!({"fail_transient": 1_000_000})).await;
    let down = Instant::now();

    let mut acked = std::collections::BTreeSet::new();
    for i in 0..INSTALLS {
        let status = stack.send_install(i).await;
        assert_eq!(status, Some(200), "install {i} while Graph is down");
        acked.insert(stack.waba(i));
    }
    // Nothing can complete while Graph is down.
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let installed_while_down = stack
        .worker_metric("wa_worker_token_fetches_total{outcome=\"ok\"")
        .await;
    stack.graph_mode(json!({"fail_transient": 0})).await;
    let back = Instant::now();

    let settled = stack.settle(&acked, Duration::from_secs(40)).await;
    let completed_after = back.elapsed();
    let retries = stack.worker_metric("wa_worker_retries_total").await;
    // (Also proves the series read above is the right one.)
    let fetched_ok = stack
        .worker_metric("wa_worker_token_fetches_total{outcome=\"ok\"")
        .await;
    report(&format!(
        "test=graph_outage sent={INSTALLS} acknowledged={} refused=0 lost=0 \
         {} \
         outage_s={} failed_graph_calls={} delay_tier_retries={retries} \
         all_installed_after_s={:.1}",
        acked.len(),
        settled.figures(),
        OUTAGE.as_secs(),
        settled.failed_graph_calls,
        completed_after.as_secs_f64(),
    ));
    assert_eq!(
        installed_while_down, 0.0,
        "a token fetch succeeded while Graph was down"
    );
    assert!(
        retries >= f64::from(INSTALLS),
        "every install should have waited in a delay tier at least once: {retries} retries"
    );
    assert_eq!(
        fetched_ok,
        f64::from(INSTALLS),
        "workers' successful token fetches"
    );
    settled.assert_consistent();
    assert_eq!(settled.active, INSTALLS as usize);
    assert_eq!(
        settled.refetches(),
        0,
        "one token fetch per business: {settled:?}"
    );
}
