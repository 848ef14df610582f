//! One publish batch on a shared confirm channel: publish every message, wait for every
//! confirm (or the confirm timeout, or a block). A channel the batch found closed or retired
//! (`confirms.rs`), or that did not confirm in time, is replaced in the pool in the
//! background (`pool.rs`). The batch runs in its
//! caller's task. Supervision and the connection are `broker.rs`'s.

use std::sync::Arc;

use tracing::warn;

use super::{Broker, Link};
use crate::{BrokerError, Outgoing, Result, confirms::SharedChannel};

impl Broker {
    /// Publishes `messages` on the pool's next channel and waits for their confirms, within
    /// the confirm timeout.
    pub(super) async fn publish_pooled(
        &self,
        link: &Arc<Link>,
        messages: Vec<Outgoing>,
        mandatory: bool,
    ) -> Result<()> {
        let timeout = self.inner.config.confirm_timeout;
        let (mut slot, mut shared) = link.pool.pick();
        if shared.is_retired() {
            // Retired by a batch that could not say so (its caller gone): replace it, and take
            // the next channel meanwhile.
            self.replace(link.clone(), slot, shared.clone());
            (slot, shared) = link.pool.pick();
        }
        let mut blocked = self.inner.blocked.subscribe();
        let result = tokio::select! {
            result = tokio::time::timeout(timeout, shared.publish(messages, mandatory)) => {
                result.map_err(|_| BrokerError::ConfirmTimeout(timeout)).and_then(|r| r)
            }
            reason = blocked.wait_for(Option::is_some) => Err(BrokerError::Blocked(
                reason.ok().and_then(|r| r.clone()).unwrap_or_default(),
            )),
        };
        if let Err(e) = &result
            && (matches!(e, BrokerError::ConfirmTimeout(_))
                || shared.is_retired()
                || !shared.channel().status().connected())
        {
            self.replace(link.clone(), slot, shared);
        }
        result
    }

    /// Replaces a failed confirm channel in the background (the failed publish is answered at
    /// once). If none can be opened, the connection is rebuilt.
    fn replace(&self, link: Arc<Link>, slot: usize, failed: Arc<SharedChannel>) {
        let broker = self.clone();
        tokio::spawn(async move {
            let within = broker.inner.config.connect_timeout;
            if let Err(e) = link.pool.replace(&link.connection, slot, &failed, within).await
                // Only the connection it belongs to: a newer one is not to be torn down.
                && broker.current().is_some_and(|now| Arc::ptr_eq(&now, &link))
            {
                warn!(error = %e, "cannot replace a confirm channel; rebuilding the connection");
                broker.repair();
            }
        });
    }
}
