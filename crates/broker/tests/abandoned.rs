//! The confirm-channel pool against the real RabbitMQ, each test under its own prefix.
//!
//! A publish whose caller stops waiting before its confirms are in (a client that hung up):
//! the publish runs in its caller's task, so its confirm channel is retired with it and a
//! fresh one takes its place; the next publishes are confirmed (through a proxy that can stop
//! relaying). And the pool opens channels as concurrent batches need them, never more than its
//! size: one broker process and one flow flag per channel are paid only for what is used.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wa_broker::{
    Broker, BrokerConfig, Outgoing, Topology,
    lapin::{Connection, ConnectionProperties, uri::AMQPUri},
};
use wa_testkit::{Proxy, amqp_addr, amqp_url, connection_channels};

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

#[tokio::test]
async fn the_pool_opens_channels_as_concurrent_batches_need_them_up_to_its_size() {
    let topology = Topology::new(format!("ab{:016x}", rand::random::<u64>()));
    let name = format!("pool-{:016x}", rand::random::<u64>());
    let mut config = BrokerConfig::new(&amqp_url(), topology.clone()).expect("broker config");
    config.channels = 4;
    config.connection_name.clone_from(&name);
    let stop = CancellationToken::new();
    let broker = Broker::start(config, stop.clone());
    assert!(broker.wait_ready(Duration::from_secs(10)).await, "ready");

    // One batch at a time: the one channel opened at start serves them all.
    for i in 0..10 {
        broker
            .publish_all(&[install(&topology, &format!("one-{i}"))])
            .await
            .unwrap_or_else(|e| panic!("sequential publish {i}: {e}"));
    }
    let channels = || {
        let name = name.clone();
        async move {
            tokio::task::spawn_blocking(move || connection_channels(&name))
                .await
                .ok()
                .flatten()
        }
    };
    assert_eq!(
        channels().await,
        Some(1),
        "one batch at a time needs one channel"
    );

    // Sixteen batches at once on a pool of four: all confirmed, at most four channels.
    let batches = (0..16).map(|i| {
        let broker = broker.clone();
        let message = install(&topology, &format!("many-{i}"));
        async move { broker.publish_owned(vec![message]).await }
    });
    for (i, result) in futures_util::future::join_all(batches)
        .await
        .into_iter()
        .enumerate()
    {
        result.unwrap_or_else(|e| panic!("concurrent publish {i}: {e}"));
    }
    let open = channels().await.expect("the pool's connection is listed");
    assert!(
        (1..=4).contains(&open),
        "a pool of 4 holds 1 to 4 channels, not {open}"
    );

    stop.cancel();
    if let Ok(connection) = Connection::connect(&amqp_url(), ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        let _ = topology.delete(&channel).await;
    }
}
