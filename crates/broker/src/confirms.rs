//! One publisher-confirm channel shared by concurrent publish batches, and the bookkeeping
//! that still gives each batch its own outcome: its nacks, its errors and its returned
//! messages, never another batch's.
//!
//! Why bookkeeping is needed: lapin does not tie a `basic.return` to the publish it returns.
//! It queues the returned message on the channel and hands it to whichever confirm it
//! completes next, and a `basic.ack` with `multiple=true` completes every pending tag up to
//! the acked one in no fixed order (`acknowledgement.rs`, `complete_pending_before` walks a
//! `HashMap`). So batch A's returned message may ride on batch B's confirm. What lapin does
//! guarantee: RabbitMQ sends a message's `basic.return` before the `basic.ack` that covers
//! it, and lapin's I/O thread handles frames in order, so the confirm carrying A's returned
//! message has resolved no later than A's own confirm.
//!
//! Hence the rule here: every batch's confirms are read only under one lock, and a batch
//! that sees its own confirms resolved reads every other resolved confirm on the channel
//! before it decides (its own first, then the others: whatever resolved before its own is
//! visible by then). A returned message is charged to the batches that published its
//! `message_id` (the dedupe key: the same change), or, if it names none in flight, to every
//! batch in flight on the channel: never silently to nobody. Confirms of a batch whose caller
//! stopped waiting stay here until they resolve, so their returns are still charged.
//!
//! This module publishes on the one channel it is given and knows nothing of pools,
//! connections or topology.

use std::{
    collections::HashMap,
    future::{Future, poll_fn},
    pin::{Pin, pin},
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
};

use lapin::{Channel, Confirmation, PublisherConfirm, options::BasicPublishOptions};

use crate::{BrokerError, Outgoing, Result};

/// A confirm channel any number of batches publish on at once.
pub(crate) struct SharedChannel {
    channel: Channel,
    /// Held while a publish is numbered and queued (see [`SharedChannel::publish`]).
    order: Mutex<()>,
    inflight: Mutex<Inflight>,
    next_batch: AtomicU64,
}

#[derive(Default)]
struct Inflight {
    /// Confirms not read yet, each with the waker of the task that waits for it.
    confirms: Vec<Unread>,
    /// The batches whose callers still wait, by number.
    batches: HashMap<u64, Batch>,
}

struct Unread {
    batch: u64,
    confirm: PublisherConfirm,
    waker: Waker,
}

struct Batch {
    /// The `message_id`s it published, to charge a returned message to.
    message_ids: Vec<String>,
    unconfirmed: usize,
    failure: Option<Failure>,
}

enum Failure {
    Nacked,
    Returned(String),
    Amqp(lapin::Error),
}

impl From<Failure> for BrokerError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Nacked => Self::Nacked,
            Failure::Returned(why) => Self::Returned(why),
            Failure::Amqp(e) => Self::Amqp(e),
        }
    }
}

impl SharedChannel {
    /// Shares `channel`, which must be in confirm mode.
    pub(crate) fn new(channel: Channel) -> Self {
        Self {
            channel,
            order: Mutex::new(()),
            inflight: Mutex::default(),
            next_batch: AtomicU64::new(0),
        }
    }

    /// The channel.
    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes `messages` and waits for their confirms: `Ok` only when the broker acked
    /// every one and returned none of them. Dropped before it ends (a timeout, a caller that
    /// stopped waiting), the batch is forgotten; its confirms are still read by the others.
    pub(crate) async fn publish(&self, messages: Vec<Outgoing>, mandatory: bool) -> Result<()> {
        let batch = self.next_batch.fetch_add(1, Ordering::Relaxed);
        let message_ids = messages
            .iter()
            .filter_map(|m| m.properties.message_id().as_ref().map(ToString::to_string))
            .collect();
        self.lock().batches.insert(
            batch,
            Batch {
                message_ids,
                unconfirmed: messages.len(),
                failure: None,
            },
        );
        let _forget = Forget {
            shared: self,
            batch,
        };
        let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        for m in messages {
            let mut publish = pin!(self.channel.basic_publish(
                m.exchange.as_str().into(),
                m.routing_key.as_str().into(),
                options,
                &m.body,
                m.properties,
            ));
            // lapin numbers the publish (the delivery tag its confirm will answer to) and
            // queues its frames in two steps of the future's first poll, which another publish
            // on this channel could come between: its frames would then reach the broker first
            // and take this one's number, and each would be confirmed by the other's ack. The
            // order lock keeps the two steps together, so numbers follow the frames' order.
            let first = poll_fn(|cx| {
                let _order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
                Poll::Ready(publish.as_mut().poll(cx))
            })
            .await;
            let confirm = match first {
                Poll::Ready(confirm) => confirm?,
                Poll::Pending => publish.await?,
            };
            self.lock().confirms.push(Unread {
                batch,
                confirm,
                waker: waker.clone(),
            });
        }
        poll_fn(|cx| self.poll_batch(batch, cx)).await
    }

    fn poll_batch(&self, batch: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut inflight = self.lock();
        // Its own confirms first: a return one of them should carry may ride on any confirm
        // that resolved no later, and every such confirm is resolved when read next.
        inflight.read(|unread| unread.batch == batch, Some(cx.waker()));
        inflight.read(|unread| unread.batch != batch, None);
        let Some(state) = inflight.batches.get_mut(&batch) else {
            return Poll::Ready(Err(BrokerError::NotConnected));
        };
        if let Some(failure) = state.failure.take() {
            return Poll::Ready(Err(failure.into()));
        }
        if state.unconfirmed == 0 {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    fn lock(&self) -> MutexGuard<'_, Inflight> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inflight {
    /// Reads every resolved confirm that `which` selects. `waker`, when given, is the reading
    /// batch's own: it becomes the one its unresolved confirms wake. Without it (other
    /// batches' confirms), each keeps its own batch's waker, which is woken once its confirm
    /// is read.
    fn read(&mut self, which: impl Fn(&Unread) -> bool, waker: Option<&Waker>) {
        let mut i = 0;
        while i < self.confirms.len() {
            let unread = &mut self.confirms[i];
            if !which(unread) {
                i += 1;
                continue;
            }
            if let Some(waker) = waker
                && !unread.waker.will_wake(waker)
            {
                unread.waker.clone_from(waker);
            }
            let mut cx = Context::from_waker(&unread.waker);
            match Pin::new(&mut unread.confirm).poll(&mut cx) {
                Poll::Pending => i += 1,
                Poll::Ready(result) => {
                    let read = self.confirms.swap_remove(i);
                    self.settle(read.batch, result);
                    // Another batch's confirm: reading it took the listener lapin's wake-up
                    // would have reached that batch through, so wake it here.
                    if waker.is_none() {
                        read.waker.wake();
                    }
                }
            }
        }
    }

    fn settle(&mut self, batch: u64, result: lapin::Result<Confirmation>) {
        match result {
            Err(e) => self.fail(batch, Failure::Amqp(e)),
            Ok(confirmation) => {
                if confirmation.is_nack() {
                    self.fail(batch, Failure::Nacked);
                }
                if let Some(returned) = confirmation.take_message() {
                    let why = returned.reply_text.to_string();
                    let id = returned
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|id| id.as_str());
                    let mut owners: Vec<u64> = self
                        .batches
                        .iter()
                        .filter(|(_, b)| id.is_some_and(|id| b.message_ids.iter().any(|m| m == id)))
                        .map(|(&number, _)| number)
                        .collect();
                    if owners.is_empty() {
                        owners = self.batches.keys().copied().collect();
                    }
                    for owner in owners {
                        self.fail(owner, Failure::Returned(why.clone()));
                    }
                }
            }
        }
        if let Some(state) = self.batches.get_mut(&batch) {
            state.unconfirmed = state.unconfirmed.saturating_sub(1);
        }
    }

    fn fail(&mut self, batch: u64, failure: Failure) {
        if let Some(state) = self.batches.get_mut(&batch) {
            state.failure.get_or_insert(failure);
        }
    }
}

/// Forgets a batch whose caller no longer waits (it ended, or was dropped).
struct Forget<'a> {
    shared: &'a SharedChannel,
    batch: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.lock().batches.remove(&self.batch);
    }
}
