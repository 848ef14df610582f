//! The dead-letter queue for operators: list what is there and why, and replay it.
//!
//! Replaying re-publishes a dead letter to the webhooks exchange under its original routing
//! key, confirmed, and only then removes it from the DLQ, so a failed replay loses nothing.
//! The worker's dedupe claim was released when the message was dead-lettered, so the replay
//! is processed afresh (and a tenant whose fetch had failed retries it).

use serde::Serialize;
use serde_json::Value;
use wa_broker::{
    Broker, BrokerError, Outgoing,
    lapin::{
        Channel,
        message::BasicGetMessage,
        options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions},
        types::FieldTable,
    },
};

use crate::headers::{self, ATTEMPT, LAST_ERROR, REASON, ROUTING_KEY};

/// One message in the dead-letter queue, as `dlq list` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The message id (the change's dedupe key).
    pub id: String,
    /// Where a replay publishes it.
    pub routing_key: String,
    /// Why it is here.
    pub reason: Option<String>,
    /// Delay tiers it went through.
    pub attempts: i64,
    /// The last transient error, if any.
    pub last_error: Option<String>,
    /// The change itself.
    pub body: Value,
}

fn describe(message: &BasicGetMessage) -> DeadLetter {
    let d = &message.delivery;
    let headers = d.properties.headers().as_ref();
    let body: Value = serde_json::from_slice(&d.data).unwrap_or(Value::Null);
    let from_body = match (body.get("object"), body.get("field")) {
        (Some(Value::String(o)), Some(Value::String(f))) => Some(format!("{o}.{f}")),
        _ => None,
    };
    DeadLetter {
        id: d
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        routing_key: headers::string(headers, ROUTING_KEY)
            .or(from_body)
            .unwrap_or_else(|| d.routing_key.to_string()),
        reason: headers::string(headers, REASON),
        attempts: headers::integer(headers, ATTEMPT).unwrap_or(0),
        last_error: headers::string(headers, LAST_ERROR),
        body,
    }
}

/// Takes every message in the queue, unacknowledged: they stay ours until acked, and return
/// to the queue when the channel closes. Nothing published during the call can be taken
/// twice, since taken messages are held; the queue's depth only says how long to keep asking
/// when messages another channel just returned are not yet visible.
async fn take_all(channel: &Channel, queue: &str) -> Result<Vec<BasicGetMessage>, BrokerError> {
    let depth = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count() as usize;
    let mut out = Vec::new();
    let mut empty_polls = 0;
    loop {
        match channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await?
        {
            Some(m) => out.push(m),
            None if out.len() < depth && empty_polls < 40 => {
                empty_polls += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            None => break,
        }
    }
    Ok(out)
}

/// Lists the dead letters without removing any.
///
/// # Errors
///
/// Broker errors.
pub async fn list(broker: &Broker) -> Result<Vec<DeadLetter>, BrokerError> {
    let channel = broker.open_channel().await?;
    let messages = take_all(&channel, &broker.topology().account_update_dlq()).await?;
    let listed = messages.iter().map(describe).collect();
    // Closing the channel returns every unacknowledged message to the queue.
    let _ = channel.close(200, "listed".into()).await;
    Ok(listed)
}

/// Result of a replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// Re-published and removed from the DLQ.
    pub replayed: usize,
    /// Left in the DLQ.
    pub kept: usize,
}

/// Replays every dead letter (`id = None`) or the one whose id is `id`.
///
/// # Errors
///
/// Broker errors; messages not yet replayed stay in the DLQ.
pub async fn replay(
    broker: &Broker,
    id: Option<&str>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Replayed, BrokerError> {
    let channel = broker.open_channel().await?;
    let messages = take_all(&channel, &broker.topology().account_update_dlq()).await?;
    let total = messages.len();
    let exchange = broker.topology().webhooks_exchange();
    let mut result = Replayed::default();
    for (done, message) in messages.into_iter().enumerate() {
        let letter = describe(&message);
        if id.is_some_and(|id| id != letter.id) {
            result.kept += 1;
            continue;
        }
        let mut headers = message
            .delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default();
        let mut fresh = FieldTable::default();
        for (k, v) in headers.inner() {
            let k_str = k.as_str();
            let broker_or_ours = ["x-wa-", "x-death", "x-first-death", "x-last-death"]
                .iter()
                .any(|p| k_str.starts_with(p));
            if !broker_or_ours {
                fresh.insert(k.clone(), v.clone());
            }
        }
        headers = fresh;
        let out = Outgoing {
            exchange: exchange.clone(),
            routing_key: letter.routing_key.clone(),
            body: message.delivery.data.clone(),
            properties: message.delivery.properties.clone().with_headers(headers),
        };
        broker.publish_all(std::slice::from_ref(&out)).await?;
        message.delivery.ack(BasicAckOptions::default()).await?;
        result.replayed += 1;
        progress(done + 1, total);
    }
    let _ = channel.close(200, "replayed".into()).await;
    Ok(result)
}
