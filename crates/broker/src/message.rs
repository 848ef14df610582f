//! [`Outgoing`]: one message to publish, persistent and JSON unless told otherwise.

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

/// A message ready for [`crate::Broker::publish_all`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The exchange (`""` is the default exchange, which routes by queue name).
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// The body.
    pub body: Vec<u8>,
    /// AMQP properties: delivery mode, ids, headers.
    pub properties: BasicProperties,
}

impl Outgoing {
    /// A persistent (`delivery_mode = 2`) JSON message with the given `message_id`, stamped
    /// with `timestamp` (unix seconds) and `app_id = wa-onboard`.
    pub fn persistent_json(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        body: Vec<u8>,
        message_id: &str,
        timestamp: u64,
    ) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            body,
            properties: BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(message_id.into())
                .with_timestamp(timestamp)
                .with_app_id("wa-onboard".into())
                .with_headers(FieldTable::default()),
        }
    }

    /// Adds (or replaces) a string header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        headers.insert(
            ShortString::from(name),
            AMQPValue::LongString(LongString::from(value.into())),
        );
        self.properties = self.properties.with_headers(headers);
        self
    }

    /// Adds (or replaces) an integer header.
    #[must_use]
    pub fn header_i64(mut self, name: &str, value: i64) -> Self {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        headers.insert(ShortString::from(name), AMQPValue::LongLongInt(value));
        self.properties = self.properties.with_headers(headers);
        self
    }
}
