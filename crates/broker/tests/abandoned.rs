//! A publish whose caller stops waiting before its confirms are in (a client that hung up):
//! the publish runs in its caller's task, so its confirm channel is retired with it and a
//! fresh one takes its place; the next publishes are confirmed. Against the real RabbitMQ,
//! through a proxy that can stop relaying; the test works under its own prefix.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wa_broker::{
    Broker, BrokerConfig, Outgoing, Topology,
    lapin::{Connection, ConnectionProperties, uri::AMQPUri},
};
use wa_testkit::{Proxy, amqp_addr, amqp_url};

fn install(topology: &Topology, id: &str) -> Outgoing {
    Outgoing::persistent_json(
        topology.webhooks_exchange(),
        "whatsapp_business_account.account_update",
        format!("{{\"id\":\"{id}\"}}").into_bytes(),
        id,
        0,
    )
}

#[tokio::test]
async fn a_publish_abandoned_before_its_confirm_leaves_the_pool_whole() {
    let topology = Topology::new(format!("ab{:016x}", rand::random::<u64>()));
    let proxy = Proxy::start(amqp_addr()).await;
    let direct: AMQPUri = amqp_url().parse().expect("AMQP_URL");
    let url = format!(
        "amqp://{}:{}@{}/%2f",
        direct.authority.userinfo.username, direct.authority.userinfo.password, proxy.addr
    );
    let mut config = BrokerConfig::new(&url, topology.clone()).expect("broker config");
    // One channel: if the abandoned batch kept it, or lost it without a replacement, no
    // later publish could be confirmed.
    config.channels = 1;
    config.confirm_timeout = Duration::from_secs(10);
    let stop = CancellationToken::new();
    let broker = Broker::start(config, stop.clone());
    assert!(broker.wait_ready(Duration::from_secs(10)).await, "ready");

    // The broker cannot answer: the caller gives up on the batch halfway.
    proxy.freeze();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        broker.publish_all(&[install(&topology, "abandoned")]),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "no confirm can come through a frozen proxy"
    );
    proxy.restore();

    for i in 0..3 {
        broker
            .publish_all(&[install(&topology, &format!("after-{i}"))])
            .await
            .unwrap_or_else(|e| panic!("publish {i} after the abandoned one: {e}"));
    }

    stop.cancel();
    if let Ok(connection) = Connection::connect(&amqp_url(), ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        let _ = topology.delete(&channel).await;
    }
}
