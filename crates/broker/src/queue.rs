//! How one queue is declared: quorum type, durable, its arguments, its bindings, and what the
//! broker's refusal of an existing queue's arguments means ([`BrokerError::Inequivalent`]).
//!
//! Owns the argument encoding only; which queues exist and what they are called is
//! [`crate::Topology`]'s. Never publishes or consumes.

use std::{fmt::Write as _, time::Duration};

use lapin::{
    Channel, ErrorKind,
    options::{QueueBindOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::BrokerError;

/// Arguments of the queues that only hold messages for people (`wa.unrouted`, the DLQ):
/// inspecting them returns messages to the queue, and RabbitMQ 4 gives quorum queues a default
/// delivery limit of 20 after which a message with no dead-letter exchange is dropped. A limit
/// no inspection will reach keeps them; 3.10 accepts the same argument.
pub(crate) fn holding_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(1_000_000_000),
    );
    args
}

/// A string argument.
pub(crate) fn string(value: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.into()))
}

/// A duration argument (`x-message-ttl`), in milliseconds.
pub(crate) fn millis(duration: Duration) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// Declares the durable quorum queue `name` with `args`.
///
/// # Errors
///
/// [`BrokerError::Inequivalent`] when `name` exists with other arguments; any other broker
/// error as it is.
pub(crate) async fn declare_quorum(
    channel: &Channel,
    name: &str,
    mut args: FieldTable,
) -> crate::Result<()> {
    args.insert(ShortString::from("x-queue-type"), string("quorum"));
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(name.into(), options, args.clone())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.kind() {
            // The same code also refuses an argument out of range ("invalid arg"): only an
            // existing queue's other arguments ("inequivalent arg") are this error.
            ErrorKind::ProtocolError(amqp)
                if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
                    && amqp.get_message().as_str().contains("inequivalent arg") =>
            {
                BrokerError::Inequivalent {
                    queue: name.to_owned(),
                    arguments: describe(&args),
                    refusal: amqp.get_message().to_string(),
                }
            }
            _ => BrokerError::Amqp(e),
        }),
    }
}

/// `x-a = 1, x-b = text`, sorted by name, for messages.
fn describe(args: &FieldTable) -> String {
    let mut text = String::new();
    for (name, value) in args.inner() {
        if !text.is_empty() {
            text.push_str(", ");
        }
        let _ = match value {
            AMQPValue::LongString(s) => write!(text, "{name} = {s}"),
            AMQPValue::LongLongInt(n) => write!(text, "{name} = {n}"),
            other => write!(text, "{name} = {other:?}"),
        };
    }
    text
}

/// Binds `queue` to `exchange` with `key`.
pub(crate) async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> crate::Result<()> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_described_by_name_and_value() {
        let mut args = holding_args();
        args.insert("x-overflow".into(), string("drop-head"));
        args.insert(
            "x-message-ttl".into(),
            millis(Duration::from_secs(7 * 86_400)),
        );
        assert_eq!(
            describe(&args),
            "x-delivery-limit = 1000000000, x-message-ttl = 604800000, x-overflow = drop-head"
        );
    }
}
