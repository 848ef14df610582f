//! [`Broker`]: one supervised connection, a pool of confirm channels, and publishing that
//! reports success only for confirmed messages.
//!
//! lapin's own recovery does not bring a connection back after a broker restart, so the
//! supervisor here owns it: connect to the first URL that answers, declare the topology, open
//! the channel pool, publish "ready", then watch the connection. When it fails, "not ready" is
//! published at once (the ingress answers 503 and Meta retries) and the loop starts again
//! after an exponential, jittered backoff.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::{StreamExt, future::try_join_all};
use lapin::{
    Channel, Connection, ConnectionProperties, Event,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{BrokerError, Outgoing, Result, Topology, startup::declared};

/// How to reach RabbitMQ and how much to publish in parallel.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Node URLs, tried in turn (`AMQP_URL`, comma-separated).
    pub urls: Vec<String>,
    /// Confirm channels in the pool. One channel is one Erlang process on the broker; several
    /// let many requests' confirms proceed in parallel.
    pub channels: usize,
    /// How long to wait for the broker to confirm a request's messages.
    pub confirm_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Shortest and longest pause between reconnection attempts (jittered, exponential).
    pub reconnect_min: Duration,
    /// See `reconnect_min`.
    pub reconnect_max: Duration,
    /// Shown in the RabbitMQ management UI for this connection.
    pub connection_name: String,
    /// Declare the topology on every (re)connection.
    pub topology: Topology,
}

impl BrokerConfig {
    /// Defaults for `urls` (a comma-separated `AMQP_URL`).
    ///
    /// # Errors
    ///
    /// [`BrokerError::Config`] when the list is empty or a URL does not parse.
    pub fn new(urls: &str, topology: Topology) -> Result<Self> {
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err(BrokerError::Config("no URL given".into()));
        }
        for url in &urls {
            url.parse::<lapin::uri::AMQPUri>()
                .map_err(|e| BrokerError::Config(format!("{}: {e}", redact(url))))?;
        }
        Ok(Self {
            urls,
            channels: 8,
            confirm_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            connection_name: "wa-onboard".into(),
            topology,
        })
    }
}

/// An AMQP URL with its password hidden, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// How long a connection must have lived for its loss to reset the reconnection backoff.
const STABLE_LINK: Duration = Duration::from_secs(10);

struct Link {
    connection: Connection,
    channels: Vec<Channel>,
}

struct Inner {
    config: BrokerConfig,
    link: RwLock<Option<Arc<Link>>>,
    ready: watch::Sender<bool>,
    repair: Notify,
    next: AtomicUsize,
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
        let broker = Self {
            inner: Arc::new(Inner {
                config,
                link: RwLock::new(None),
                ready,
                repair: Notify::new(),
                next: AtomicUsize::new(0),
            }),
        };
        tokio::spawn(broker.clone().supervise(shutdown));
        broker
    }

    /// The topology this broker declares.
    pub fn topology(&self) -> &Topology {
        &self.inner.config.topology
    }

    /// Whether a live connection with its channel pool is in place right now.
    pub fn is_ready(&self) -> bool {
        self.current()
            .is_some_and(|link| link.connection.status().connected())
    }

    /// Follows readiness: `true` after each (re)connection, `false` as soon as it is lost.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.inner.ready.subscribe()
    }

    /// Waits until ready, or until `timeout` passes. Returns whether it is ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.readiness();
        tokio::time::timeout(timeout, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
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

    /// Publishes every message on one pooled confirm channel and waits for the broker's
    /// confirms. `mandatory` is set, so a message the broker could not route even to the
    /// alternate exchange fails the call instead of vanishing.
    ///
    /// # Errors
    ///
    /// Any [`BrokerError`]: then some or all messages may not be stored, and the caller must
    /// report failure for all of them (a retry publishes them again; consumers dedupe).
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<()> {
        let link = self.current().ok_or(BrokerError::NotConnected)?;
        let slot = self.inner.next.fetch_add(1, Ordering::Relaxed) % link.channels.len();
        let channel = &link.channels[slot];
        let result = self.publish_on(channel, messages).await;
        if result.is_err() && !channel.status().connected() {
            warn!(
                channel = slot,
                "confirm channel lost; rebuilding the connection"
            );
            self.repair();
        }
        result
    }

    async fn publish_on(&self, channel: &Channel, messages: &[Outgoing]) -> Result<()> {
        let options = BasicPublishOptions {
            mandatory: true,
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
                    m.properties.clone(),
                )
                .await?;
            confirms.push(confirm);
        }
        let timeout = self.inner.config.confirm_timeout;
        let confirmations = tokio::time::timeout(timeout, try_join_all(confirms))
            .await
            .map_err(|_| BrokerError::ConfirmTimeout(timeout))??;
        for confirmation in confirmations {
            if confirmation.is_nack() {
                return Err(BrokerError::Nacked);
            }
            if let Some(returned) = confirmation.take_message() {
                return Err(BrokerError::Returned(returned.reply_text.to_string()));
            }
        }
        Ok(())
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
                Ok(link) => {
                    let link = Arc::new(link);
                    let up_since = std::time::Instant::now();
                    self.set_link(Some(link.clone()));
                    self.watch(&link, &shutdown).await;
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
        *self
            .inner
            .link
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = link;
        self.inner.ready.send_replace(ready);
    }

    /// Returns when the connection fails, a repair is asked for, or shutdown begins.
    async fn watch(&self, link: &Link, shutdown: &CancellationToken) {
        let mut events = link.connection.events_listener();
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
                    Some(Event::ConnectionBlocked(reason)) => warn!(%reason, "broker blocked publishing"),
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

    async fn connect(&self) -> Result<Link> {
        let config = &self.inner.config;
        let mut last = BrokerError::NotConnected;
        for url in &config.urls {
            let properties = ConnectionProperties::default()
                .with_connection_name(config.connection_name.clone().into());
            let attempt = async {
                let connection = declared(url, properties, &config.topology).await?;
                let mut channels = Vec::with_capacity(config.channels.max(1));
                for _ in 0..config.channels.max(1) {
                    let channel = connection.create_channel().await?;
                    channel
                        .confirm_select(ConfirmSelectOptions::default())
                        .await?;
                    channels.push(channel);
                }
                Ok::<_, BrokerError>(Link {
                    connection,
                    channels,
                })
            };
            match tokio::time::timeout(config.connect_timeout, attempt).await {
                Ok(Ok(link)) => {
                    info!(node = %redact(url), channels = link.channels.len(), "broker connected");
                    return Ok(link);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("amqp://user:hunter2@host:5672/%2f"),
            "amqp://user:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host"), "amqp://host");
    }

    #[test]
    fn a_comma_separated_list_is_several_nodes() {
        let c = BrokerConfig::new("amqp://a:5672/%2f, amqp://b:5672/%2f", Topology::default())
            .expect("valid");
        assert_eq!(c.urls.len(), 2);
        assert!(BrokerConfig::new(" , ", Topology::default()).is_err());
        assert!(BrokerConfig::new("http://x", Topology::default()).is_err());
    }
}
