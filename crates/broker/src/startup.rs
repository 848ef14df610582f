//! Opening a connection with the topology declared on it, and the start-up check built on
//! that ([`BrokerConfig::declare_once`]). Owns no connection beyond the call; the supervised
//! one is [`crate::Broker`]'s.

use lapin::{Connection, ConnectionProperties};

use crate::{BrokerConfig, BrokerError, Result, Topology};

/// A connection to `url` on which `topology` has just been declared.
pub(crate) async fn declared(
    url: &str,
    properties: ConnectionProperties,
    topology: &Topology,
) -> Result<Connection> {
    let connection = Connection::connect(url, properties).await?;
    let setup = connection.create_channel().await?;
    topology.declare(&setup).await?;
    let _ = setup.close(200, "declared".into()).await;
    Ok(connection)
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
