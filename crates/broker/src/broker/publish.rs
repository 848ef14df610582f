//! One publish batch on a leased confirm channel: publish every message, wait for every
//! confirm (or the confirm timeout, or a block), and give the channel back only when the
//! batch ended cleanly. Any other end (an error, or a caller that stopped waiting) retires
//! and closes the channel, freeing its place for a fresh one (`pool.rs` says why). The batch runs in its
//! caller's task. Supervision and the connection are `broker.rs`'s.

use std::sync::Arc;

use futures_util::future::try_join_all;
use lapin::{Channel, options::BasicPublishOptions};
use tracing::warn;

use super::{Broker, Link};
use crate::{BrokerError, Outgoing, Result, pool};

impl Broker {
    /// Leases a channel (waiting at most the confirm timeout for one), publishes `messages`
    /// on it and waits for their confirms, all within the confirm timeout.
    pub(super) async fn publish_leased(
        &self,
        link: &Arc<Link>,
        messages: Vec<Outgoing>,
        mandatory: bool,
    ) -> Result<()> {
        let timeout = self.inner.config.confirm_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let lease = match tokio::time::timeout_at(deadline, link.pool.lease(&link.connection)).await
        {
            Ok(Ok(lease)) => lease,
            Ok(Err(e)) => {
                // The connection took no new channel: rebuild it, if it is still the current one.
                if self.current().is_some_and(|now| Arc::ptr_eq(&now, link)) {
                    warn!(error = %e, "cannot open a confirm channel; rebuilding the connection");
                    self.repair();
                }
                return Err(e);
            }
            Err(_) => return Err(BrokerError::ConfirmTimeout(timeout)),
        };
        // The block may have begun while this batch waited for a channel (nothing is published
        // on it yet: the lease goes back to the pool).
        if let Some(reason) = self.blocked() {
            return Err(BrokerError::Blocked(reason));
        }
        // Until the batch ends cleanly, its confirms or returns may still come: a batch that
        // fails, or whose caller stops waiting (a client that hung up), retires its channel.
        let batch = Unfinished {
            lease,
            finished: false,
        };
        let mut blocked = self.inner.blocked.subscribe();
        let result = tokio::select! {
            result = tokio::time::timeout_at(deadline, self.publish_on(batch.lease.channel(), messages, mandatory)) => {
                result.map_err(|_| BrokerError::ConfirmTimeout(timeout)).and_then(|r| r)
            }
            reason = blocked.wait_for(Option::is_some) => Err(BrokerError::Blocked(
                reason.ok().and_then(|r| r.clone()).unwrap_or_default(),
            )),
        };
        if result.is_ok() {
            batch.finish();
        }
        result
    }

    /// Closes a retired confirm channel in the background (the failed publish is answered at
    /// once). Its place in the pool is already free.
    fn close_retired(retired: Channel) {
        tokio::spawn(async move {
            if retired.status().connected() {
                let _ = retired.close(200, "retired".into()).await;
            }
        });
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        messages: Vec<Outgoing>,
        mandatory: bool,
    ) -> Result<()> {
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        let mut confirms = Vec::with_capacity(messages.len());
        for m in messages {
            let confirm = channel
                .basic_publish(
                    m.exchange.as_str().into(),
                    m.routing_key.as_str().into(),
                    options,
                    &m.body,
                    m.properties,
                )
                .await?;
            confirms.push(confirm);
        }
        for confirmation in try_join_all(confirms).await? {
            if confirmation.is_nack() {
                return Err(BrokerError::Nacked);
            }
            if let Some(returned) = confirmation.take_message() {
                return Err(BrokerError::Returned(returned.reply_text.to_string()));
            }
        }
        Ok(())
    }
}

/// A leased channel whose batch has not ended cleanly yet. [`Unfinished::finish`] gives the
/// channel back to the pool; dropped unfinished (an error, or a caller that stopped waiting),
/// it retires and closes the channel, freeing its place for a fresh one. This is what lets a
/// publish run in its caller's task rather than in a task of its own.
struct Unfinished<'a> {
    lease: pool::Lease<'a>,
    finished: bool,
}

impl Unfinished<'_> {
    /// The batch ended cleanly: every confirm is in, the channel can serve another batch.
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let channel = self.lease.retire();
            // Outside a runtime (it is shutting down) the connection's end closes it.
            if tokio::runtime::Handle::try_current().is_ok() {
                Broker::close_retired(channel);
            }
        }
    }
}
