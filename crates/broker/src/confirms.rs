//! One publisher-confirm channel shared by concurrent publish batches, and the bookkeeping
//! that still gives each batch its own outcome: its nacks and its returned messages, never
//! another batch's.
//!
//! Why bookkeeping is needed: lapin does not tie a `basic.return` to the publish it returns.
//! It queues the returned message on the channel and hands it to whichever confirm it
//! completes next, and a `basic.ack` with `multiple=true` completes every pending tag up to
//! the acked one in no fixed order (`acknowledgement.rs`, `complete_pending_before` walks a
//! `HashMap`). So batch A's returned message may ride on publish X's confirm. What holds:
//! RabbitMQ sends a message's `basic.return` just before the `basic.ack` that covers it (its
//! channel flushes confirms after each publish it handles), so when an ack arrives at most one
//! return waits, and lapin hands it to one of the confirms that very ack completes. X was thus
//! numbered (given its delivery tag) before A's own confirm resolved.
//!
//! Hence the rules here, each under one lock per channel:
//!
//! - Each batch reads its own confirms. A batch calls itself confirmed only once its own
//!   confirms are in and every publish numbered before that moment has had its confirm read
//!   (lapin gives a publish its confirm only once its frames are written, and the ack may
//!   have come first; and one ack resolves its confirms one by one). Every return that could
//!   be A's has then been charged.
//! - A returned message is charged to the batches in flight that published its `message_id`
//!   (the dedupe key: the same change); one naming no batch in flight belongs to a batch
//!   whose caller is gone (not answered `200`), and one without a `message_id` to every
//!   `mandatory` batch in flight, since none can be told apart.
//! - A publish abandoned while being sent (its caller timed out or hung up in that instant)
//!   takes its confirm with it, so no return on the channel can be told apart any more: the
//!   channel is retired, every batch on it fails ([`BrokerError::ChannelRetired`], a `503`)
//!   and the pool opens another. So does a channel with more than [`MAX_UNREAD`] confirms
//!   unread (a safety valve: callers gone and the broker silent; far above any batch).
//!
//! Confirms of a batch whose caller stopped waiting stay here until read: a batch waiting for
//! them adopts them (their resolution wakes it), and every waiting batch is woken when one
//! leaves confirms behind. A channel error (the broker closing the channel) fails every batch
//! with a confirm still unresolved on it.
//!
//! This module publishes on the one channel it is given and knows nothing of pools,
//! connections or topology.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::{Future, poll_fn},
    pin::{Pin, pin},
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
};

use lapin::{Channel, Confirmation, PublisherConfirm, options::BasicPublishOptions};

use crate::{BrokerError, Outgoing, Result};

/// Most confirms a channel keeps unread before it is retired.
pub(crate) const MAX_UNREAD: usize = 1 << 18;

/// A confirm channel any number of batches publish on at once.
pub(crate) struct SharedChannel {
    channel: Channel,
    /// Held while a publish is numbered and queued (see [`SharedChannel::publish`]).
    order: Mutex<()>,
    inflight: Mutex<Inflight>,
    next_batch: AtomicU64,
    retired: AtomicBool,
}

#[derive(Default)]
struct Inflight {
    /// Confirms not read yet, each with the waker of the task that waits for it.
    confirms: Vec<Unread>,
    /// The batches whose callers still wait, by number.
    batches: HashMap<u64, Batch>,
    /// Publishes numbered by lapin whose confirm was not read yet, by send number.
    unread_numbers: BTreeSet<u64>,
    next_send: u64,
    /// Batches waiting for every publish numbered before a bound to be read, by bound.
    waiters: BTreeMap<u64, Vec<Waker>>,
}

struct Unread {
    batch: u64,
    number: u64,
    confirm: PublisherConfirm,
    waker: Waker,
}

struct Batch {
    /// The `message_id`s it published, to charge a returned message to.
    message_ids: Vec<String>,
    /// Whether it published `mandatory` (only then can a message of its come back).
    mandatory: bool,
    unconfirmed: usize,
    failure: Option<Failure>,
    /// The send number below which every publish's confirm must be read before the batch
    /// decides: set when it first finds all its confirms in.
    numbered: Option<u64>,
}

enum Failure {
    Nacked,
    Returned(String),
    Amqp(lapin::Error),
    Retired,
}

impl From<Failure> for BrokerError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Nacked => Self::Nacked,
            Failure::Returned(why) => Self::Returned(why),
            Failure::Amqp(e) => Self::Amqp(e),
            Failure::Retired => Self::ChannelRetired,
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
            retired: AtomicBool::new(false),
        }
    }

    /// The channel.
    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Whether the channel was retired (see the module's rules): the pool must replace it.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Publishes `messages` and waits for their confirms: `Ok` only when the broker acked
    /// every one and returned none of them. Dropped once its messages are sent (a timeout, a
    /// caller that stopped waiting), the batch is forgotten and its confirms are read by the
    /// others; dropped while one is being sent, it retires the channel.
    pub(crate) async fn publish(&self, messages: Vec<Outgoing>, mandatory: bool) -> Result<()> {
        if self.is_retired() {
            return Err(BrokerError::ChannelRetired);
        }
        let batch = self.next_batch.fetch_add(1, Ordering::Relaxed);
        let message_ids = messages
            .iter()
            .filter_map(|m| m.properties.message_id().as_ref().map(ToString::to_string))
            .collect();
        self.lock().batches.insert(
            batch,
            Batch {
                message_ids,
                mandatory,
                unconfirmed: messages.len(),
                failure: None,
                numbered: None,
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
            if self.is_retired() {
                return Err(BrokerError::ChannelRetired);
            }
            let mut publish = pin!(self.channel.basic_publish(
                m.exchange.as_str().into(),
                m.routing_key.as_str().into(),
                options,
                &m.body,
                m.properties,
            ));
            let mut send = Send {
                shared: self,
                number: None,
            };
            // lapin numbers the publish (the delivery tag its confirm will answer to) and
            // queues its frames in two steps of the future's first poll, which another publish
            // on this channel could come between: its frames would then reach the broker first
            // and take this one's number, and each would be confirmed by the other's ack. The
            // order lock keeps the two steps together, so numbers follow the frames' order;
            // the send number is taken in the same step.
            let first = poll_fn(|cx| {
                let _order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
                send.number = Some(self.lock().start_send());
                Poll::Ready(publish.as_mut().poll(cx))
            })
            .await;
            let confirm = match first {
                Poll::Ready(confirm) => confirm?,
                Poll::Pending => publish.await?,
            };
            send.hand_over(batch, confirm, waker.clone());
        }
        poll_fn(|cx| self.poll_batch(batch, cx)).await
    }

    fn poll_batch(&self, batch: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut inflight = self.lock();
        // Its own confirms only: each batch reads its own, and the bound below makes this one
        // wait until every earlier confirm (one may carry this batch's return) has been read,
        // by its own batch or, if that one is gone, by this one.
        inflight.read(|unread| unread.batch == batch, Some(cx.waker()));
        let numbered = inflight.next_send;
        // Retired under this lock: the batch may be one that started on it just before.
        if self.is_retired() {
            return Poll::Ready(Err(BrokerError::ChannelRetired));
        }
        let Some(state) = inflight.batches.get_mut(&batch) else {
            return Poll::Ready(Err(BrokerError::ChannelRetired));
        };
        if let Some(failure) = state.failure.take() {
            return Poll::Ready(Err(failure.into()));
        }
        if state.unconfirmed > 0 {
            return Poll::Pending;
        }
        // Every publish numbered before its confirms resolved must have had its confirm read
        // before the batch may call itself confirmed. The bound is taken once, when the batch
        // first finds all its confirms in (later than they resolved, so it covers them); taken
        // again at each poll, new sends could keep it waiting.
        let numbered = *state.numbered.get_or_insert(numbered);
        if inflight.unread_numbers.range(..numbered).next().is_none() {
            return Poll::Ready(Ok(()));
        }
        // Confirms of batches whose callers are gone wake nobody: this batch adopts those it
        // waits for, so their resolution wakes it, and reads any that resolved meanwhile.
        let Inflight {
            confirms, batches, ..
        } = &mut *inflight;
        for unread in confirms.iter_mut() {
            if unread.number < numbered && !batches.contains_key(&unread.batch) {
                unread.waker.clone_from(cx.waker());
            }
        }
        inflight.read(|unread| unread.number < numbered, None);
        match inflight
            .batches
            .get_mut(&batch)
            .and_then(|s| s.failure.take())
        {
            Some(failure) => return Poll::Ready(Err(failure.into())),
            None if inflight.unread_numbers.range(..numbered).next().is_none() => {
                return Poll::Ready(Ok(()));
            }
            None => {}
        }
        inflight
            .waiters
            .entry(numbered)
            .or_default()
            .push(cx.waker().clone());
        Poll::Pending
    }

    fn retire(&self, inflight: &mut Inflight) {
        self.retired.store(true, Ordering::Release);
        let batches: Vec<u64> = inflight.batches.keys().copied().collect();
        for batch in batches {
            inflight.fail(batch, Failure::Retired);
        }
        for unread in &inflight.confirms {
            unread.waker.wake_by_ref();
        }
        inflight.wake_all_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, Inflight> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inflight {
    fn start_send(&mut self) -> u64 {
        let number = self.next_send;
        self.next_send += 1;
        self.unread_numbers.insert(number);
        number
    }

    /// Wakes every batch waiting for earlier confirms (they poll again and see why).
    fn wake_all_waiters(&mut self) {
        for waker in std::mem::take(&mut self.waiters).into_values().flatten() {
            waker.wake();
        }
    }

    /// Forgets a publish number (its confirm read, or lost) and wakes the batches whose bound
    /// every earlier publish now meets.
    fn done(&mut self, number: u64) {
        self.unread_numbers.remove(&number);
        let lowest = self
            .unread_numbers
            .first()
            .copied()
            .unwrap_or(self.next_send);
        let later = self.waiters.split_off(&(lowest + 1));
        for waker in std::mem::replace(&mut self.waiters, later)
            .into_values()
            .flatten()
        {
            waker.wake();
        }
    }

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
                    self.done(read.number);
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
                    let id = returned.properties.message_id().as_ref();
                    let owners: Vec<u64> = self
                        .batches
                        .iter()
                        .filter(|(_, b)| {
                            b.mandatory
                                && id
                                    .is_none_or(|id| b.message_ids.iter().any(|m| m == id.as_str()))
                        })
                        .map(|(&number, _)| number)
                        .collect();
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

/// One publish between lapin numbering it and its confirm being handed over for reading.
/// Dropped before that (its caller gone, or the send failed), its confirm is lost with it:
/// it retires the channel.
struct Send<'a> {
    shared: &'a SharedChannel,
    number: Option<u64>,
}

impl Send<'_> {
    fn hand_over(mut self, batch: u64, confirm: PublisherConfirm, waker: Waker) {
        let Some(number) = self.number.take() else {
            return;
        };
        let mut inflight = self.shared.lock();
        inflight.confirms.push(Unread {
            batch,
            number,
            confirm,
            waker,
        });
        if inflight.confirms.len() > MAX_UNREAD {
            self.shared.retire(&mut inflight);
        }
    }
}

impl Drop for Send<'_> {
    fn drop(&mut self) {
        if let Some(number) = self.number.take() {
            let mut inflight = self.shared.lock();
            inflight.done(number);
            self.shared.retire(&mut inflight);
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
        let mut inflight = self.shared.lock();
        inflight.batches.remove(&self.batch);
        // Confirms it leaves unread now wake nobody: the batches waiting for them poll again
        // and adopt them.
        if inflight.confirms.iter().any(|u| u.batch == self.batch) {
            inflight.wake_all_waiters();
        }
    }
}
