//! The pool of publisher-confirm channels: a publish batch leases one channel for itself
//! alone, from its first `basic.publish` until its last confirm, so a returned message can
//! only ever be reported to the batch that published it.
//!
//! Why a lease and not a shared channel: lapin does not tie a `basic.return` to the publish it
//! returns. It queues the returned message on the channel and hands it to whichever confirm it
//! completes next; a `basic.ack` with `multiple=true` completes every pending tag up to the
//! acked one, in no fixed order (`acknowledgement.rs`, `complete_pending_before` walks a
//! `HashMap`). On a channel shared by two requests, request A's unroutable message could then
//! ride on request B's confirm: B would answer `503` and A — whose message was dropped — `200`.
//! With the channel leased, every pending tag and every return on it belongs to one batch,
//! and RabbitMQ sends a message's `basic.return` before the `basic.ack` that covers it, so the
//! batch sees its own return among its own confirms.
//!
//! Channels are opened on demand, up to the pool's size: one at start (so a connection whose
//! channels cannot take `confirm.select` is refused then), another only when every open one is
//! leased. The pool thus holds as many channels as batches were ever in flight at once, not its
//! size: every frame lapin writes reads the flow flag of every channel on the connection
//! (`Channels::flow`), a cost linear in their number (docs/BENCHMARKS.md, "Ingress").
//!
//! A lease whose batch did not end cleanly (timeout, blocked broker, channel error, or a
//! caller that stopped waiting: a client that hung up) may still have confirms or returns in
//! flight: the broker retires that channel, never hands it to another batch, and closes it;
//! its place in the pool is free for a fresh one. A lease dropped without being retired goes
//! back to the pool.
//!
//! This module never publishes and knows nothing of messages or topology.

use std::sync::{Mutex, PoisonError};

use lapin::{Channel, Connection, options::ConfirmSelectOptions};
use tokio::sync::Semaphore;

use crate::{BrokerError, Result};

/// Confirm channels, each leased to one publish batch at a time.
pub(crate) struct Pool {
    /// Open channels no batch holds.
    free: Mutex<Vec<Channel>>,
    /// One per channel the pool may still lease: free, or not opened yet.
    permits: Semaphore,
    size: usize,
}

impl Pool {
    /// A pool of at most `size` confirm channels on `connection`, with the first one open.
    pub(crate) async fn open(connection: &Connection, size: usize) -> Result<Self> {
        let size = size.max(1);
        let first = open(connection).await?;
        Ok(Self {
            permits: Semaphore::new(size),
            free: Mutex::new(vec![first]),
            size,
        })
    }

    /// How many channels the pool may hold at once.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// A channel for one batch: a free one, or a new one on `connection` while fewer than the
    /// pool's size are leased. Waits for a free one otherwise. Cancelled (the caller's
    /// deadline, or a caller that stopped waiting), it leaves the pool as it was: a channel
    /// still opening is dropped, and lapin closes a channel whose last handle is dropped.
    ///
    /// # Errors
    ///
    /// [`BrokerError`] when a new channel cannot be opened.
    pub(crate) async fn lease(&self, connection: &Connection) -> Result<Lease<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BrokerError::NotConnected)?;
        let free = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let channel = match free {
            Some(channel) => channel,
            None => open(connection).await?,
        };
        permit.forget();
        Ok(Lease {
            pool: self,
            channel,
            retired: false,
        })
    }

    /// Puts a returned lease's channel at the disposal of the next batch.
    fn put(&self, channel: Channel) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(channel);
        self.permits.add_permits(1);
    }
}

/// One confirm channel on `connection`.
async fn open(connection: &Connection) -> Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// A channel leased to one batch. Dropped, it goes back to the pool; [`Lease::retire`] keeps
/// it from ever being used again.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    channel: Channel,
    retired: bool,
}

impl Lease<'_> {
    /// The leased channel.
    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Takes the channel out of the pool for good (its confirms or returns may still arrive)
    /// and frees its place: the next batch that finds no free channel opens a fresh one.
    pub(crate) fn retire(&mut self) -> Channel {
        self.retired = true;
        self.pool.permits.add_permits(1);
        self.channel.clone()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.retired {
            self.pool.put(self.channel.clone());
        }
    }
}
