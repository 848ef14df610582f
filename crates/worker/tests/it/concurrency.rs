//! `WA_CONCURRENCY` is per worker process, across both queues (docs/REFERENCE.md,
//! "Variables"): with one permit held by an install waiting on Graph, a session event on the
//! other queue waits for it, and goes through as soon as it is given back.

use std::time::Duration;

use serde_json::json;
use tokio::{io::AsyncReadExt, net::TcpListener};
use wa_broker::{
    Outgoing,
    lapin::{options::QueueDeclareOptions, types::FieldTable},
};
use wa_envelope::session::SessionEvent;

use crate::helpers::*;

const WABA_HELD: &str = "524126980791430";
const WABA_WAITING: &str = "524126980791431";

#[tokio::test]
async fn one_permit_is_shared_by_both_queues_of_a_worker() {
    let mut env = spawn_env().await;
    // Graph is a socket the test holds: a request sent there waits until the test lets go.
    let graph = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut config = env.config();
    config.graph.base = format!("http://{}", graph.local_addr().expect("addr"));
    config.graph.timeout = Duration::from_secs(120);
    config.concurrency = 1;
    env.spawn_worker_with(config).await;

    env.deliver(&installed(WABA_HELD, "942647313864044", 1_763_900_000))
        .await;
    let (mut held, _) = tokio::time::timeout(Duration::from_secs(15), graph.accept())
        .await
        .expect("the install's token request reaches Graph")
        .expect("accept");
    let mut request = [0_u8; 1024];
    let read = held.read(&mut request).await.expect("the request");
    assert!(read > 0, "a request on the held connection");

    let session = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH",
        "data": {"phone_number_id": "106540352242923", "waba_id": WABA_WAITING}});
    let change = SessionEvent::from_value(session)
        .expect("a session event")
        .into_change(1_800_000_000);
    env.broker
        .publish_all(&[Outgoing::persistent_json(
            env.topology.webhooks_exchange(),
            change.routing_key(),
            change.to_json(),
            change.id.as_str(),
            0,
        )])
        .await
        .expect("publish");
    // Delivered to the worker (nothing ready in its queue), yet not handled: the process's
    // one permit is the install's.
    let channel = env.broker.open_channel().await.expect("channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let queue = env.topology.signup_events_queue();
    eventually(
        Duration::from_secs(15),
        "the session event delivered to the worker",
        || async {
            let q = channel
                .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                .await
                .expect("passive declare");
            (q.message_count() == 0).then_some(())
        },
    )
    .await;
    assert_eq!(metric(&env.metrics(0).await, "wa_worker_in_flight "), 1.0);
    assert!(
        env.tenant(WABA_WAITING).await.is_none(),
        "the session event was handled while the only permit was held"
    );

    // Graph hangs up: the install fails transiently (a delay tier) and gives its permit back.
    drop(held);
    drop(graph);
    let t = env
        .wait_tenant(WABA_WAITING, "the session event handled", |t| {
            !t.phone_number_ids.is_empty()
        })
        .await;
    assert_eq!(t.phone_number_ids, ["106540352242923"]);
    env.stop().await;
}
