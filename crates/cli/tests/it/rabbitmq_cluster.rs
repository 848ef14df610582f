//! `wa-onboard ingress` and `worker` pointed at the 3-node RabbitMQ cluster
//! (`scripts/rabbitmq-cluster.sh`, started when not running): `AMQP_URL` lists the three
//! nodes, the ingress publishes through one, the worker consumes through another (its list
//! starts with the last node), and a signed install ends applied with its token. The run uses
//! its own exchange/queue prefix and Redis key prefix and removes both.

use std::time::Duration;

use wa_store::{Status, TokenStatus};
use wa_testkit::{amqp_cluster_url, ensure_rabbitmq_cluster, rabbitmq_cluster};

use crate::helpers::*;

const APP_SECRET: &str = "cluster-test-app-secret";
/// The worker's one delay tier (declared, so removed at the end).
const RETRY_DELAY: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_signed_install_goes_from_the_ingress_to_the_worker_through_the_rabbitmq_cluster() {
    ensure_rabbitmq_cluster();
    let tenants = TestTenants::new().await;
    let prefix = format!("wa-cluster-test-{:016x}", rand::random::<u64>());
    let http = reqwest::Client::new();

    let mut cmd = wa_onboard();
    cmd.arg("graph-sim")
        .env("WA_GRAPH_SIM_LISTEN", "127.0.0.1:0")
        .env("WA_APP_SECRET", APP_SECRET);
    let mut graph = Role::start("graph-sim", cmd).await;
    graph.wait_for(&http, "/_sim/calls").await;

    let cmd = ingress_cmd(APP_SECRET, &amqp_cluster_url(), &prefix);
    let mut ingress = Role::start("ingress", cmd).await;

    // The worker's list in the other order: it connects to the last node, the ingress to the
    // first, so the message crosses the cluster.
    let reversed: Vec<String> = rabbitmq_cluster()
        .into_iter()
        .rev()
        .map(|n| n.url)
        .collect();
    let cmd = worker_cmd(
        APP_SECRET,
        &tenants,
        &graph.base(),
        &reversed.join(","),
        &prefix,
        RETRY_DELAY,
    );
    let mut worker = Role::start("worker", cmd).await;

    ingress.wait_ready(&http).await;
    worker.wait_ready(&http).await;

    let webhook = format!("{}/webhooks/whatsapp", ingress.base());
    let reply = post_signed(&http, &webhook, APP_SECRET, install_fixture()).await;
    assert_eq!(reply.status(), 200, "a 200: the change is in the cluster");

    let waba = waba("495709166956424");
    let tenant = eventually(
        Duration::from_secs(30),
        "the install applied with its token by the worker",
        || async {
            tenants.store.get(&waba).await.ok().flatten().filter(|t| {
                t.status == Status::Installed
                    && t.token.status == Some(TokenStatus::Active)
                    && t.subscribed
            })
        },
    )
    .await;
    assert_eq!(
        tenant.owner_business_id.map(|o| o.to_string()).as_deref(),
        Some("942647313864044")
    );

    ingress.stop().await;
    worker.stop().await;
    graph.stop().await;
    let mut topology = wa_broker::Topology::new(prefix);
    topology.retry_delays = vec![RETRY_DELAY];
    delete_topology(&amqp_cluster_url(), topology).await;
}
