//! The confirm-channel pool against the real RabbitMQ, each test under its own prefix.
//!
//! A publish whose caller stops waiting before its confirms are in (a client that hung up):
//! the publish runs in its caller's task and its channel is shared, so the confirms it left
//! behind must not keep the channel from confirming the next publishes (through a proxy that
//! can stop relaying). And concurrent batches share the pool's few channels, each answered by
//! its own messages' confirms: acked exactly when the broker took them.

use std::{collections::BTreeSet, time::Duration};

use tokio_util::sync::CancellationToken;
use wa_broker::{
    Broker, BrokerConfig, BrokerError, Outgoing, Topology,
    lapin::{
        Connection, ConnectionProperties,
        options::{BasicGetOptions, QueueDeclareOptions},
        types::{AMQPValue, FieldTable},
        uri::AMQPUri,
    },
};
use wa_testkit::{Proxy, amqp_addr, amqp_url, connection_channels, eventually};

fn install(topology: &Topology, id: &str) -> Outgoing {
    Outgoing::persistent_json(
        topology.webhooks_exchange(),
        "whatsapp_business_account.account_update",
        format!("{{\"id\":\"{id}\"}}").into_bytes(),
        id,
        0,
    )
}

/// A broker started on `url` under a fresh prefix with `channels` confirm channels and the
/// connection name `name`, once ready; `stop` ends it.
struct Started {
    topology: Topology,
    broker: Broker,
    stop: CancellationToken,
}

async fn started(url: &str, channels: usize, name: &str, confirm_timeout: Duration) -> Started {
    let topology = Topology::new(format!("ab{:016x}", rand::random::<u64>()));
    let mut config = BrokerConfig::new(url, topology.clone()).expect("broker config");
    config.channels = channels;
    config.confirm_timeout = confirm_timeout;
    config.connection_name = name.to_owned();
    let stop = CancellationToken::new();
    let broker = Broker::start(config, stop.clone());
    assert!(broker.wait_ready(Duration::from_secs(10)).await, "ready");
    Started {
        topology,
        broker,
        stop,
    }
}

impl Started {
    /// Stops the broker and deletes the topology.
    async fn clean_up(self) {
        self.stop.cancel();
        if let Ok(connection) =
            Connection::connect(&amqp_url(), ConnectionProperties::default()).await
            && let Ok(channel) = connection.create_channel().await
        {
            let _ = self.topology.delete(&channel).await;
        }
    }
}

#[tokio::test]
async fn a_publish_abandoned_before_its_confirm_leaves_the_pool_whole() {
    let proxy = Proxy::start(amqp_addr()).await;
    let direct: AMQPUri = amqp_url().parse().expect("AMQP_URL");
    let url = format!(
        "amqp://{}:{}@{}/%2f",
        direct.authority.userinfo.username, direct.authority.userinfo.password, proxy.addr
    );
    // One channel: if the abandoned batch's confirms stalled it, no later publish could be
    // confirmed.
    let started = started(&url, 1, "abandoned", Duration::from_secs(10)).await;
    let (topology, broker) = (&started.topology, &started.broker);

    // The broker cannot answer: the caller gives up on the batch halfway.
    proxy.freeze();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        broker.publish_all(&[install(topology, "abandoned")]),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "no confirm can come through a frozen proxy"
    );
    proxy.restore();

    for i in 0..3 {
        broker
            .publish_all(&[install(topology, &format!("after-{i}"))])
            .await
            .unwrap_or_else(|e| panic!("publish {i} after the abandoned one: {e}"));
    }

    started.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_share_the_pools_channels_and_each_is_confirmed() {
    let name = format!("pool-{:016x}", rand::random::<u64>());
    // A long confirm timeout: a batch whose confirm arrived but whose task was never woken
    // would wait for it.
    let started = started(&amqp_url(), 2, &name, Duration::from_secs(600)).await;
    let (topology, broker) = (&started.topology, &started.broker);

    // 64 publishers, like 64 client connections, each publishing 300 batches of one to three
    // messages one after another, on a pool of two channels, from four threads.
    let publishers = (0..64).map(|p| {
        let broker = broker.clone();
        let topology = topology.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                let messages = (0..=i % 3)
                    .map(|j| install(&topology, &format!("many-{p}-{i}-{j}")))
                    .collect();
                if let Err(e) = broker.publish_owned(messages).await {
                    return Err(format!("publisher {p}, batch {i}: {e}"));
                }
            }
            Ok(())
        })
    });
    for done in futures_util::future::join_all(publishers).await {
        done.expect("publisher task")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let open = tokio::task::spawn_blocking(move || connection_channels(&name))
        .await
        .expect("rabbitmqctl");
    assert_eq!(
        open,
        Some(2),
        "the batches share the pool's two channels, none has one of its own"
    );

    started.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_shared_channel_each_batch_is_answered_by_its_own_messages_confirm() {
    let started = started(&amqp_url(), 1, "capped", Duration::from_secs(10)).await;
    let (topology, broker) = (&started.topology, &started.broker);
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ at AMQP_URL");
    let channel = connection.create_channel().await.expect("channel");
    // A queue that takes 1,500 messages and nacks every later one (`reject-publish`): which
    // batches were acked must be exactly which messages it holds. (Thousands of batches:
    // lapin's numbering race, which this holds against, is a few instructions wide.)
    let queue = format!("{}.capped", topology.webhooks_exchange());
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(1500));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            arguments,
        )
        .await
        .expect("declare the capped queue");

    // 3,000 batches at once on one channel, from four threads, straight to the queue.
    let batches = (0..3000).map(|i| {
        let broker = broker.clone();
        let id = format!("capped-{i}");
        let message =
            Outgoing::persistent_json("", queue.as_str(), id.clone().into_bytes(), &id, 0);
        tokio::spawn(async move { (id, broker.publish_owned(vec![message]).await) })
    });
    let mut acked = BTreeSet::new();
    for done in futures_util::future::join_all(batches).await {
        match done.expect("batch task") {
            (id, Ok(())) => {
                acked.insert(id);
            }
            (_, Err(BrokerError::Nacked)) => {}
            (id, Err(e)) => panic!("{id}: neither acked nor nacked: {e}"),
        }
    }
    let mut held = BTreeSet::new();
    while let Some(message) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        held.insert(String::from_utf8_lossy(&message.delivery.data).into_owned());
    }
    assert_eq!(held.len(), 1500, "the queue holds its 1,500");
    let wrong: Vec<_> = acked.symmetric_difference(&held).take(10).collect();
    assert!(
        wrong.is_empty(),
        "the batches answered Ok must be exactly those whose message the queue took; \
         these were answered by another message's confirm: {wrong:?}"
    );

    let _ = channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await;
    started.clean_up().await;
}

#[tokio::test]
async fn a_publish_abandoned_while_being_sent_gives_way_to_a_fresh_channel() {
    let name = format!("pool-{:016x}", rand::random::<u64>());
    let started = started(&amqp_url(), 1, &name, Duration::from_secs(10)).await;
    let (topology, broker) = (&started.topology, &started.broker);

    for round in 0..20 {
        // Polled once, the publish is numbered and its frames queued; dropped then, its
        // confirm is lost with it (lapin hands it over only once the frames are written),
        // so the channel can no longer tell returns apart and must give way.
        let messages = [install(topology, &format!("dropped-{round}"))];
        let mut abandoned = Box::pin(broker.publish_all(&messages));
        let _ = futures_util::poll!(abandoned.as_mut());
        drop(abandoned);

        let message = install(topology, &format!("after-{round}"));
        eventually(
            Duration::from_secs(10),
            "a publish confirmed after the abandoned one",
            || {
                let (broker, message) = (broker.clone(), message.clone());
                async move { broker.publish_owned(vec![message]).await.ok() }
            },
        )
        .await;
    }
    let open = tokio::task::spawn_blocking(move || connection_channels(&name))
        .await
        .expect("rabbitmqctl");
    assert!(
        matches!(open, Some(1 | 2)),
        "retired channels are closed, not left open: {open:?}"
    );

    started.clean_up().await;
}
