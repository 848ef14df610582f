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
//! A lease whose batch did not end cleanly (timeout, blocked broker, channel error, or a
//! caller that stopped waiting: a client that hung up) may still have confirms or returns in
//! flight: the broker retires that channel, never hands it to another batch, and opens a
//! fresh one in its place. A lease dropped without being retired goes back to the pool.
//!
//! This module never publishes and knows nothing of messages or topology.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use lapin::{Channel, Connection, options::ConfirmSelectOptions};
use tokio::sync::Semaphore;

use crate::Result;

/// Confirm channels, each leased to one publish batch at a time.
pub(crate) struct Pool {
    free: Mutex<Vec<Channel>>,
    permits: Semaphore,
}

impl Pool {
    /// Opens `size` confirm channels on `connection`, all at once.
    pub(crate) async fn open(connection: &Connection, size: usize) -> Result<Self> {
        let channels =
            futures_util::future::try_join_all((0..size.max(1)).map(|_| open(connection))).await?;
        Ok(Self {
            permits: Semaphore::new(channels.len()),
            free: Mutex::new(channels),
        })
    }

    /// How many channels are idle right now.
    pub(crate) fn idle(&self) -> usize {
        self.permits.available_permits()
    }

    /// A channel for one batch, waiting up to `wait` for one to be free.
    pub(crate) async fn lease(&self, wait: Duration) -> Option<Lease<'_>> {
        let permit = tokio::time::timeout(wait, self.permits.acquire())
            .await
            .ok()?
            .ok()?;
        permit.forget();
        let channel = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match channel {
            Some(channel) => Some(Lease {
                pool: self,
                channel,
                retired: false,
            }),
            // Cannot happen (one permit per free channel); give the permit back.
            None => {
                self.permits.add_permits(1);
                None
            }
        }
    }

    /// Puts a channel (new, or a returned lease's) at the disposal of the next batch.
    pub(crate) fn put(&self, channel: Channel) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(channel);
        self.permits.add_permits(1);
    }
}

/// One confirm channel on `connection`.
pub(crate) async fn open(connection: &Connection) -> Result<Channel> {
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

    /// Takes the channel out of the pool for good: its confirms or returns may still arrive.
    /// The pool has one channel less until the caller [`Pool::put`]s a new one.
    pub(crate) fn retire(&mut self) -> Channel {
        self.retired = true;
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
