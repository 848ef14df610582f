//! The topology on the 3-node RabbitMQ cluster (`scripts/rabbitmq-cluster.sh`, started when
//! not running; `WA_CLUSTER_AMQP_URL`): every quorum queue has a member on each node, and an
//! `AMQP_URL` listing the nodes reaches the cluster through whichever node answers first,
//! skipping one that refuses. Each test works under its own prefix and removes it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wa_broker::{
    Broker, BrokerConfig, Outgoing, Topology,
    lapin::options::{BasicAckOptions, BasicGetOptions},
};
use wa_testkit::{
    RefusedAddr, amqp_cluster_url, ensure_rabbitmq_cluster, eventually, quorum_queue,
    rabbitmq_cluster,
};

/// A broker started on `urls` under a fresh prefix (with one delay tier), ready; stopped on
/// drop, and its topology removed (even after a panic) through a broker of its own.
struct OnCluster {
    broker: Broker,
    urls: String,
    stop: CancellationToken,
}

impl OnCluster {
    async fn start(urls: &str) -> Self {
        ensure_rabbitmq_cluster();
        let mut topology = Topology::new(format!("c{:016x}", rand::random::<u64>()));
        topology.retry_delays = vec![Duration::from_secs(1)];
        let config = BrokerConfig::new(urls, topology).expect("cluster URLs");
        let stop = CancellationToken::new();
        let broker = Broker::start(config, stop.clone());
        assert!(
            broker.wait_ready(Duration::from_secs(20)).await,
            "broker ready on the cluster ({urls})"
        );
        Self {
            broker,
            urls: urls.to_owned(),
            stop,
        }
    }
}

impl Drop for OnCluster {
    fn drop(&mut self) {
        self.stop.cancel();
        // Synchronous, on a thread and runtime of its own: the test's runtime may be the one
        // this blocks.
        let topology = self.broker.topology().clone();
        let urls = self.urls.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(config) = BrokerConfig::new(&urls, topology.clone()) else {
                    return;
                };
                let stop = CancellationToken::new();
                let broker = Broker::start(config, stop.clone());
                if broker.wait_ready(Duration::from_secs(15)).await
                    && let Ok(ch) = broker.open_channel().await
                {
                    let _ = topology.delete(&ch).await;
                }
                stop.cancel();
            });
        });
        let _ = cleanup.join();
    }
}

#[tokio::test]
async fn every_quorum_queue_is_replicated_on_the_three_nodes() {
    let on = OnCluster::start(&amqp_cluster_url()).await;
    let nodes = rabbitmq_cluster();
    let mut names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    names.sort();
    let topology = on.broker.topology().clone();
    for queue in topology.queues() {
        // Raft members start in the background: wait until each node runs its member.
        let status = eventually(
            Duration::from_secs(20),
            &format!("{queue} with a running member on every node"),
            || {
                let status = quorum_queue(&nodes[0].name, &queue).filter(|s| {
                    let mut online = s.online.clone();
                    online.sort();
                    online == names
                });
                async move { status }
            },
        )
        .await;
        let mut members = status.members.clone();
        members.sort();
        assert_eq!(
            members, names,
            "{queue}: a member on each of the 3 nodes (quorum_cluster_size, 3 by default)"
        );
        assert!(
            status.members.contains(&status.leader),
            "{queue}: leader {status:?}"
        );
    }
}

#[tokio::test]
async fn a_refusing_node_first_in_the_list_is_skipped_and_publishes_reach_the_cluster() {
    let refused = RefusedAddr::bind();
    let urls = format!(
        "amqp://guest:guest@{}/%2f,{}",
        refused.addr,
        amqp_cluster_url()
    );
    let on = OnCluster::start(&urls).await;
    let topology = on.broker.topology().clone();
    on.broker
        .publish_all(&[Outgoing::persistent_json(
            topology.webhooks_exchange(),
            "whatsapp_business_account.account_update",
            br#"{"probe":1}"#.to_vec(),
            "cluster-probe-1",
            0,
        )])
        .await
        .expect("confirmed by the cluster");

    // Read back from another node than the first reachable one: the queue is the cluster's.
    let last = rabbitmq_cluster().pop().expect("a node");
    let connection = wa_broker::lapin::Connection::connect(&last.url, Default::default())
        .await
        .expect("the last node");
    let ch = connection.create_channel().await.expect("channel");
    let got = ch
        .basic_get(
            topology.account_update_queue().as_str().into(),
            BasicGetOptions::default(),
        )
        .await
        .expect("basic.get")
        .expect("the published message, readable on every node");
    assert_eq!(got.delivery.data, br#"{"probe":1}"#);
    got.delivery
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");
    let _ = connection.close(200, "read".into()).await;
}
