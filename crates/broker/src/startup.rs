//! Opening a connection with the topology declared on it, and the start-up check built on
//! that ([`BrokerConfig::declare_once`]). Owns no connection beyond the call; the supervised
//! one is [`crate::Broker`]'s.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use lapin::{
    Connection, ConnectionProperties, ErrorKind,
    protocol::{AMQPErrorKind, AMQPSoftError},
};

use crate::{BrokerConfig, BrokerError, Result, Topology};

/// A connection to `url` on which `topology` has just been declared.
///
/// Replicas that start together on an empty broker declare the same new quorum queues at
/// once, and RabbitMQ (3.10 at least) may answer the later declaration `NOT_FOUND` ("home
/// node … is down or inaccessible") while the first one's queue is still starting; the
/// channel is closed with it. That answer is transient, so the declaration is made again on a
/// fresh channel a few times before it counts as an error.
pub(crate) async fn declared(
    url: &str,
    properties: ConnectionProperties,
    topology: &Topology,
) -> Result<Connection> {
    let connection = Connection::connect(url, properties).await?;
    let declare = || async {
        let setup = connection.create_channel().await?;
        topology.declare(&setup).await?;
        let _ = setup.close(200, "declared".into()).await;
        Ok::<_, BrokerError>(())
    };
    // 50, 100, 200, 400 ms, each at most doubled by the jitter: at most 1.5 s of waiting,
    // well inside `connect_timeout` (5 s by default), which bounds the connection and every
    // declaration too.
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500))
        .with_max_times(4)
        .with_jitter();
    declare.retry(backoff).when(queue_starting).await?;
    Ok(connection)
}

/// Whether `error` is RabbitMQ's `NOT_FOUND` for a queue that exists but has no running
/// process or leader yet (see [`declared`]).
fn queue_starting(error: &BrokerError) -> bool {
    matches!(error, BrokerError::Amqp(e) if matches!(
        e.kind(),
        ErrorKind::ProtocolError(amqp)
            if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
                && amqp.get_message().as_str().contains("down or inaccessible")
    ))
}

impl BrokerConfig {
    /// Declares the topology once on the first node that answers, for a start-up check: an
    /// existing queue with other arguments is an error the operator must act on, where an
    /// unreachable broker is only a reason to keep trying (which [`Broker::start`] does).
    ///
    /// # Errors
    ///
    /// [`BrokerError::Inequivalent`] when a queue exists with other arguments; the last
    /// node's error when none answered within `connect_timeout`.
    pub async fn declare_once(&self) -> Result<()> {
        let mut last = BrokerError::NotConnected;
        for url in &self.urls {
            let properties = ConnectionProperties::default()
                .with_connection_name(format!("{} (start-up check)", self.connection_name).into());
            match tokio::time::timeout(
                self.connect_timeout,
                declared(url, properties, &self.topology),
            )
            .await
            {
                Ok(Ok(connection)) => {
                    let _ = connection.close(200, "checked".into()).await;
                    return Ok(());
                }
                Ok(Err(e @ BrokerError::Inequivalent { .. })) => return Err(e),
                Ok(Err(e)) => last = e,
                Err(_) => last = BrokerError::ConfirmTimeout(self.connect_timeout),
            }
        }
        Err(last)
    }
}
