//! [`Tap`]: a consumer of an exchange as the partner's own services run one: its own queue,
//! bound with its own key, read with lapin, every message kept for the test to inspect.
//!
//! Talks to RabbitMQ only, never to the code under test; declares nothing but its own
//! queue, which is exclusive to its connection and gone when the tap is.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::FieldTable,
};
use tokio::task::JoinHandle;

use crate::eventually;

/// One message as the tap received it.
#[derive(Debug, Clone)]
pub struct Tapped {
    /// The routing key it was published with.
    pub routing_key: String,
    /// `message_id`, if set.
    pub message_id: Option<String>,
    /// `content_type`, if set.
    pub content_type: Option<String>,
    /// `delivery_mode` (2 = persistent), if set.
    pub delivery_mode: Option<u8>,
    /// Every header, as text (for "is this string anywhere in the headers" checks).
    pub headers: String,
    /// The body as received.
    pub body: Vec<u8>,
}

impl Tapped {
    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether `needle` appears in the body or in any header.
    pub fn contains(&self, needle: &str) -> bool {
        let bytes = needle.as_bytes();
        self.body.windows(bytes.len()).any(|w| w == bytes) || self.headers.contains(needle)
    }
}

/// A queue of the test's own, bound to an exchange, and what it received.
pub struct Tap {
    connection: Connection,
    channel: Channel,
    queue: String,
    received: Arc<Mutex<Vec<Tapped>>>,
    consuming: Option<JoinHandle<()>>,
}

impl Tap {
    /// Binds a new queue to `exchange` (which must exist) with `binding_key`, and consumes
    /// it at once.
    ///
    /// # Panics
    ///
    /// When RabbitMQ is unreachable or refuses the queue or the binding.
    pub async fn bind(amqp_url: &str, exchange: &str, binding_key: &str) -> Self {
        let mut tap = Self::bound(amqp_url, exchange, binding_key, FieldTable::default()).await;
        tap.start().await;
        tap
    }

    /// Binds a new queue declared with `args` (e.g. `x-max-length`) to `exchange` with
    /// `binding_key`, without consuming it yet: see [`Tap::start`].
    ///
    /// # Panics
    ///
    /// When RabbitMQ is unreachable or refuses the queue or the binding.
    pub async fn bound(
        amqp_url: &str,
        exchange: &str,
        binding_key: &str,
        args: FieldTable,
    ) -> Self {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .expect("RabbitMQ at AMQP_URL");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let own = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), own, args)
            .await
            .expect("the tap's queue")
            .name()
            .to_string();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                binding_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the tap's binding");
        Self {
            connection,
            channel,
            queue,
            received: Arc::default(),
            consuming: None,
        }
    }

    /// Puts `body` straight into the tap's queue (through the default exchange), confirmed:
    /// e.g. to fill a bounded queue.
    ///
    /// # Panics
    ///
    /// When the broker does not confirm it.
    pub async fn put(&self, body: &[u8]) {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "the broker refused the message");
    }

    /// Starts consuming (auto-ack): from here on every message is kept in arrival order.
    ///
    /// # Panics
    ///
    /// When the broker refuses the consumer.
    pub async fn start(&mut self) {
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let mut consumer = self
            .channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                no_ack,
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let received = self.received.clone();
        self.consuming = Some(tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let p = &delivery.properties;
                let tapped = Tapped {
                    routing_key: delivery.routing_key.to_string(),
                    message_id: p.message_id().as_ref().map(ToString::to_string),
                    content_type: p.content_type().as_ref().map(ToString::to_string),
                    delivery_mode: *p.delivery_mode(),
                    headers: format!("{:?}", p.headers()),
                    body: delivery.data.clone(),
                };
                received.lock().expect("tap").push(tapped);
            }
        }));
    }

    /// Every message received so far, in arrival order.
    pub fn received(&self) -> Vec<Tapped> {
        self.received.lock().expect("tap").clone()
    }

    /// Waits until what was received satisfies `done`, at most `within`, and returns it.
    ///
    /// # Panics
    ///
    /// When `within` passes first (the message names `what`).
    pub async fn wait(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Tapped]) -> bool,
    ) -> Vec<Tapped> {
        eventually(within, what, || async {
            let received = self.received();
            done(&received).then_some(received)
        })
        .await
    }

    /// Closes the tap's connection; its queue goes with it.
    pub async fn close(mut self) {
        if let Some(task) = self.consuming.take() {
            task.abort();
        }
        let _ = self.connection.close(200, "tap closed".into()).await;
    }
}
