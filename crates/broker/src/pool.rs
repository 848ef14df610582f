//! The pool of publisher-confirm channels: a few channels, each shared by every batch that
//! picks it (`confirms.rs` says how each batch still learns its own outcome), taken in turn.
//!
//! Why shared and few: a channel per batch in flight cost the ingress more than its whole
//! request path. The broker acks one message at a time per channel, lapin wakes for each, and
//! reads the flow flag of every channel on the connection before each frame it writes
//! (`Channels::flow`). On a shared channel the broker acks many messages with one frame
//! (docs/BENCHMARKS.md, "Ingress").
//!
//! A channel that fails (the broker closed it, or it stopped confirming) is replaced in its
//! slot in the background; batches still waiting on it keep it until they end, and lapin
//! closes it when the last of them lets go.
//!
//! This module opens channels and hands them out; it never publishes.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use lapin::{Connection, options::ConfirmSelectOptions};

use crate::{BrokerError, Result, confirms::SharedChannel};

/// Confirm channels shared by concurrent batches.
pub(crate) struct Pool {
    slots: Vec<Slot>,
    next: AtomicUsize,
}

struct Slot {
    channel: RwLock<Arc<SharedChannel>>,
    replacing: AtomicBool,
}

impl Pool {
    /// Opens `size` confirm channels on `connection`, all at once.
    pub(crate) async fn open(connection: &Connection, size: usize) -> Result<Self> {
        let channels =
            futures_util::future::try_join_all((0..size.max(1)).map(|_| open(connection))).await?;
        Ok(Self {
            slots: channels
                .into_iter()
                .map(|channel| Slot {
                    channel: RwLock::new(Arc::new(channel)),
                    replacing: AtomicBool::new(false),
                })
                .collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// How many channels the pool holds.
    pub(crate) fn size(&self) -> usize {
        self.slots.len()
    }

    /// The next channel in turn, with its slot's number (for [`Pool::replace`]).
    pub(crate) fn pick(&self) -> (usize, Arc<SharedChannel>) {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let channel = self.slots[slot]
            .channel
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        (slot, channel)
    }

    /// Opens a channel in place of `failed` in `slot`, unless it was replaced already or a
    /// replacement is under way. `Err` when no channel could be opened `within` that time.
    pub(crate) async fn replace(
        &self,
        connection: &Connection,
        slot: usize,
        failed: &Arc<SharedChannel>,
        within: std::time::Duration,
    ) -> Result<()> {
        let slot = &self.slots[slot];
        let current = || {
            slot.channel
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        };
        if !Arc::ptr_eq(&current(), failed) || slot.replacing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = match tokio::time::timeout(within, open(connection)).await {
            Err(_) => Err(BrokerError::ConfirmTimeout(within)),
            Ok(opened) => opened,
        };
        let result = match result {
            Ok(fresh) => {
                let mut channel = slot
                    .channel
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if Arc::ptr_eq(&channel, failed) {
                    *channel = Arc::new(fresh);
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
        slot.replacing.store(false, Ordering::Release);
        result
    }
}

/// One confirm channel on `connection`, ready to share.
async fn open(connection: &Connection) -> Result<SharedChannel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(SharedChannel::new(channel))
}
