//! Queues as an earlier version of wa-onboard declared them, so a test can check what the
//! current version does when it meets one. Talks to RabbitMQ with lapin only; knows the old
//! arguments, never the current topology.

use lapin::{
    Connection, ConnectionProperties,
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable, LongString},
};

/// Declares `queue` at `amqp_url` as versions before the bound declared `wa.unrouted`: a
/// durable quorum queue with a delivery limit, no length and no TTL.
///
/// # Panics
///
/// When RabbitMQ is unreachable or refuses the declaration.
pub async fn declare_unbounded_unrouted(amqp_url: &str, queue: &str) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ at AMQP_URL");
    let channel = connection.create_channel().await.expect("channel");
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(1_000_000_000),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), durable, args)
        .await
        .expect("the unbounded queue of an earlier version");
    let _ = connection.close(200, "declared".into()).await;
}
