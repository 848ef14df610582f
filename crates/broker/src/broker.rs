//! [`Broker`]: one supervised connection, a pool of confirm channels, and publishing that
//! reports success only for confirmed messages.
//!
//! lapin's own recovery does not bring a connection back after a broker restart, so the
//! supervisor here owns it: connect to the first URL that answers, declare the topology, open
//! the channel pool, publish "ready", then watch the connection. When it fails, "not ready" is
//! published at once (the ingress answers 503 and Meta retries) and the loop starts again
//! after an exponential, jittered backoff capped low (`reconnect_max`), so the service is
//! back within about a second of the broker's return.
//!
//! A connection the broker has blocked (`connection.blocked`: a memory or disk alarm) is not
//! ready either: publishes fail at once with [`BrokerError::Blocked`] instead of waiting for
//! a confirm that cannot come, and a batch already waiting is released the moment the block
//! arrives.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::{StreamExt, stream::BoxStream};
use lapin::{Channel, Connection, ConnectionProperties, Event};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{
    BrokerConfig, BrokerError, Outgoing, Result, Topology, config::redact, pool::Pool,
    startup::declared,
};

mod publish;

/// How long a connection must have lived for its loss to reset the reconnection backoff.
const STABLE_LINK: Duration = Duration::from_secs(10);

struct Link {
    connection: Connection,
    pool: Pool,
}

struct Inner {
    config: BrokerConfig,
    link: RwLock<Option<Arc<Link>>>,
    ready: watch::Sender<bool>,
    /// `Some(reason)` while the broker has blocked the current connection.
    blocked: watch::Sender<Option<String>>,
    repair: Notify,
}

/// A handle on the supervised connection. Cheap to clone; every clone shares the pool.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl Broker {
    /// Starts the supervisor. It connects in the background and keeps reconnecting until
    /// `shutdown` is cancelled, then closes the connection.
    pub fn start(config: BrokerConfig, shutdown: CancellationToken) -> Self {
        let (ready, _) = watch::channel(false);
        let (blocked, _) = watch::channel(None);
        let broker = Self {
            inner: Arc::new(Inner {
                config,
                link: RwLock::new(None),
                ready,
                blocked,
                repair: Notify::new(),
            }),
        };
        tokio::spawn(broker.clone().supervise(shutdown));
        broker
    }

    /// The topology this broker declares.
    pub fn topology(&self) -> &Topology {
        &self.inner.config.topology
    }

    /// Whether a live connection with its channel pool is in place right now, and the broker
    /// takes messages on it (not blocked by a resource alarm).
    pub fn is_ready(&self) -> bool {
        self.blocked().is_none()
            && self
                .current()
                .is_some_and(|link| link.connection.status().connected())
    }

    /// Why the broker blocks publishing on the current connection (a memory or disk alarm),
    /// if it does.
    pub fn blocked(&self) -> Option<String> {
        self.inner.blocked.borrow().clone()
    }

    /// Follows the connection: `true` after each (re)connection, `false` as soon as it is
    /// lost. A blocked connection stays `true` here (consumers keep consuming and acking on
    /// it); [`Broker::is_ready`] tells whether it takes messages.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.inner.ready.subscribe()
    }

    /// Waits until ready (connected and not blocked), or until `timeout` passes. Returns
    /// whether it is ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut connected = self.readiness();
        let mut blocked = self.inner.blocked.subscribe();
        let ready = async {
            loop {
                if *connected.borrow_and_update() && blocked.borrow_and_update().is_none() {
                    return true;
                }
                tokio::select! {
                    changed = connected.changed() => if changed.is_err() { return false },
                    changed = blocked.changed() => if changed.is_err() { return false },
                }
            }
        };
        tokio::time::timeout(timeout, ready).await.unwrap_or(false)
    }

    /// A new channel on the current connection, for consumers.
    ///
    /// # Errors
    ///
    /// [`BrokerError::NotConnected`] while reconnecting; any channel-open error.
    pub async fn open_channel(&self) -> Result<Channel> {
        let link = self.current().ok_or(BrokerError::NotConnected)?;
        Ok(link.connection.create_channel().await?)
    }

    /// Asks the supervisor to drop the connection and build a new one (after a channel error
    /// that left the pool unusable).
    pub fn repair(&self) {
        // `notify_waiters` stores no permit: a repair asked for while the supervisor is
        // already reconnecting must not tear down the next, healthy connection.
        self.inner.repair.notify_waiters();
    }

    fn current(&self) -> Option<Arc<Link>> {
        self.inner
            .link
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publishes every message on the pool's next confirm channel (shared with other batches;
    /// `confirms.rs` keeps each batch's outcome its own) and waits for the broker's confirms,
    /// at most `confirm_timeout` in all. `mandatory` is set, so a message the broker could not
    /// route even to the alternate exchange fails the call instead of vanishing.
    ///
    /// # Errors
    ///
    /// Any [`BrokerError`]: then some or all messages may not be stored, and the caller must
    /// report failure for all of them (a retry publishes them again; consumers dedupe).
    /// [`BrokerError::Blocked`] at once while the broker blocks publishing.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<()> {
        self.publish(messages.to_vec(), true).await
    }

    /// [`Broker::publish_all`] for messages the caller no longer needs: they are moved into
    /// the publishing task instead of copied.
    ///
    /// # Errors
    ///
    /// As [`Broker::publish_all`].
    pub async fn publish_owned(&self, messages: Vec<Outgoing>) -> Result<()> {
        self.publish(messages, true).await
    }

    /// As [`Broker::publish_all`], but without `mandatory`: a message no queue is bound for is
    /// dropped by the broker and still counts as published. For a topic exchange whose
    /// subscribers bind their own queues (`wa.tenant_events`): with none bound, nobody waits
    /// for the message. A missing exchange still fails the call (the broker closes the
    /// channel), as do a nack, a block and a confirm timeout.
    ///
    /// # Errors
    ///
    /// As [`Broker::publish_all`], except [`BrokerError::Returned`].
    pub async fn publish_all_unrouted_ok(&self, messages: &[Outgoing]) -> Result<()> {
        self.publish(messages.to_vec(), false).await
    }

    async fn publish(&self, messages: Vec<Outgoing>, mandatory: bool) -> Result<()> {
        let link = self.current().ok_or(BrokerError::NotConnected)?;
        if let Some(reason) = self.blocked() {
            return Err(BrokerError::Blocked(reason));
        }
        self.publish_pooled(&link, messages, mandatory).await
    }

    async fn supervise(self, shutdown: CancellationToken) {
        let config = &self.inner.config;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.reconnect_min)
            .with_max_delay(config.reconnect_max)
            .with_jitter()
            .without_max_times();
        let mut delays = backoff.build();
        while !shutdown.is_cancelled() {
            match self.connect().await {
                Ok((link, events)) => {
                    let link = Arc::new(link);
                    let up_since = std::time::Instant::now();
                    self.set_link(Some(link.clone()));
                    self.watch(&link, events, &shutdown).await;
                    self.set_link(None);
                    // Best effort: the connection is usually gone already.
                    let _ = link.connection.close(200, "reconnecting".into()).await;
                    // A connection that lived a while starts the backoff afresh; one that died
                    // at once (a broker accepting then dropping us) keeps backing off.
                    let delay = if up_since.elapsed() >= STABLE_LINK {
                        delays = backoff.build();
                        config.reconnect_min
                    } else {
                        delays.next().unwrap_or(config.reconnect_max)
                    };
                    if !shutdown.is_cancelled() {
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = tokio::time::sleep(delay) => {}
                        }
                    }
                }
                Err(e) => {
                    let delay = delays.next().unwrap_or(config.reconnect_max);
                    warn!(error = %e, retry_in = ?delay, "broker unreachable");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        info!("broker supervisor stopped");
    }

    fn set_link(&self, link: Option<Arc<Link>>) {
        let ready = link.is_some();
        // A new connection starts unblocked; the broker says so again if the alarm holds.
        self.inner.blocked.send_replace(None);
        *self
            .inner
            .link
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = link;
        self.inner.ready.send_replace(ready);
    }

    /// Returns when the connection fails, a repair is asked for, or shutdown begins.
    async fn watch(
        &self,
        link: &Link,
        mut events: BoxStream<'static, Event>,
        shutdown: &CancellationToken,
    ) {
        // Some failures surface only in the status, not as an event: check it too.
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.inner.repair.notified() => return,
                event = events.next() => match event {
                    Some(Event::Error(e)) => {
                        warn!(error = %e, "broker connection lost");
                        return;
                    }
                    Some(Event::ConnectionBlocked(reason)) => {
                        warn!(%reason, "broker blocked publishing; not ready until it unblocks");
                        self.inner.blocked.send_replace(Some(reason));
                    }
                    Some(Event::ConnectionUnblocked) => {
                        info!("broker unblocked publishing");
                        self.inner.blocked.send_replace(None);
                    }
                    Some(_) => {}
                    None => return,
                },
                _ = tick.tick() => if !link.connection.status().connected() {
                    warn!("broker connection closed");
                    return;
                },
            }
        }
    }

    /// A connection with its topology declared and its pool open, and its events from the
    /// first one on (a broker under an alarm says `connection.blocked` right away).
    async fn connect(&self) -> Result<(Link, BoxStream<'static, Event>)> {
        let config = &self.inner.config;
        let mut last = BrokerError::NotConnected;
        for url in &config.urls {
            let properties = ConnectionProperties::default()
                .with_connection_name(config.connection_name.clone().into());
            let attempt = async {
                let connection = declared(url, properties, &config.topology).await?;
                let events = connection.events_listener().boxed();
                let pool = Pool::open(&connection, config.channels).await?;
                Ok::<_, BrokerError>((Link { connection, pool }, events))
            };
            match tokio::time::timeout(config.connect_timeout, attempt).await {
                Ok(Ok((link, events))) => {
                    info!(node = %redact(url), channels = link.pool.size(), "broker connected");
                    return Ok((link, events));
                }
                Ok(Err(e @ BrokerError::Inequivalent { .. })) => {
                    error!(node = %redact(url), error = %e, "topology refused");
                    last = e;
                }
                Ok(Err(e)) => {
                    warn!(node = %redact(url), error = %e, "broker node failed");
                    last = e;
                }
                Err(_) => {
                    warn!(node = %redact(url), "broker node timed out");
                    last = BrokerError::ConfirmTimeout(config.connect_timeout);
                }
            }
        }
        Err(last)
    }
}
