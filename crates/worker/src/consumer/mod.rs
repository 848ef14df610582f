//! One consume loop for every queue the worker takes: deliveries in, dedupe claim, the
//! queue's [`Handler`], then exactly one of ack, a delay tier of that queue, or the
//! dead-letter queue ([`settle`]), and only then the ack. A message is never acked before its
//! effects (or its move to another durable queue) are confirmed.
//!
//! The loop knows nothing of what a message means: a queue is bound to its handler with
//! [`Consumer::new`], so consuming another queue is one more [`Handler`]. It owns manual acks,
//! bounded prefetch and concurrency, reconnection, graceful shutdown, the consumer span, and
//! the per-delivery metrics and log fields ([`crate::metrics::Outcome`]).

mod settle;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, field::Empty, info, warn};
use wa_broker::{
    Broker,
    lapin::{
        message::Delivery,
        options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
        types::FieldTable,
    },
};
use wa_ids::DedupeKey;
use wa_store::{Claim, Store};

use self::settle::{Disposition, Settle};
use crate::{
    headers::{self, ATTEMPT},
    metrics::{Metrics, event_label},
    outcome::{Applied, Failure},
};

/// What the loop needs to know about a parsed message.
pub trait Message: Send + Sync {
    /// The message id: its dedupe key and `messaging.message.id`.
    fn id(&self) -> &DedupeKey;
    /// The event name metrics and spans use (bounded by [`event_label`]).
    fn event(&self) -> Option<&str>;
    /// The routing key a replay of its dead letter is published with.
    fn routing_key(&self) -> String;
}

/// What one queue's messages mean: how a body is read and what applying it does.
pub trait Handler: Send + Sync + 'static {
    /// A message of this queue.
    type Message: Message;
    /// The consumer span's `otel.name`.
    const SPAN_NAME: &'static str;

    /// Reads a delivery's body (and its AMQP `message_id`); an error sends it to the
    /// dead-letter queue.
    ///
    /// # Errors
    ///
    /// Why the body is not a message of this queue.
    fn parse(&self, body: &[u8], message_id: Option<&str>) -> Result<Self::Message, String>;

    /// Plans and carries out `message`. Called at most once at a time per message id (the
    /// dedupe claim is held), and never again once it returned `Ok` within `WA_DEDUPE_TTL`.
    fn apply(
        &self,
        message: &Self::Message,
    ) -> impl Future<Output = Result<Applied, Failure>> + Send;

    /// Told where a delivery of this queue went once it is settled: after `apply`, or
    /// without it (a duplicate, a malformed body, a claim refused). Where a metric counts
    /// what became of a message, it counts here, once per delivery: a failure `apply`
    /// returns may still go to a delay tier or, its tiers exhausted, to the dead-letter
    /// queue; only the settle knows which.
    fn settled(&self, _fate: Fate) {}
}

/// Where a settled delivery went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Acked: applied, stale, or a duplicate.
    Acked,
    /// To a delay tier after a failed attempt.
    Retried,
    /// To the first delay tier without counting an attempt: another worker held its key.
    Busy,
    /// To the dead-letter queue: failed for good, or its delay tiers exhausted.
    DeadLettered,
    /// Back to its queue, its move unconfirmed: it is delivered again.
    Requeued,
}

/// How far one consumer reads ahead, and how long its claims hold. How many messages are
/// processed at once is the process's, shared by every consumer ([`Services::permits`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Unacknowledged deliveries the broker may push to this consumer ahead (its share of
    /// `WA_PREFETCH`).
    pub prefetch: u16,
    /// How long a claim holds while a message is processed (`WA_CLAIM_LEASE`).
    pub lease: Duration,
    /// How long a done message is remembered (`WA_DEDUPE_TTL`).
    pub dedupe_ttl: Duration,
}

/// What every consumer of the process shares.
#[derive(Clone)]
pub struct Services {
    /// The broker connection.
    pub broker: Broker,
    /// Where dedupe claims are kept.
    pub store: Store,
    /// The worker's metrics.
    pub metrics: Arc<Metrics>,
    /// One permit per message processed at once, across every consumer (`WA_CONCURRENCY`).
    pub permits: Arc<Semaphore>,
}

/// A queue bound to its handler.
pub struct Consumer<H> {
    queue: String,
    handler: H,
    limits: Limits,
}

/// A consumer while it runs: shared by the tasks handling its deliveries.
struct Running<H> {
    consumer: Consumer<H>,
    services: Services,
}

/// Waits until readiness equals `want`; `false` if the broker handle is gone.
async fn until(ready: &mut tokio::sync::watch::Receiver<bool>, want: bool) -> bool {
    ready.wait_for(|r| *r == want).await.is_ok()
}

impl<H: Handler> Consumer<H> {
    /// Binds `queue` to `handler`. Retries go to `queue`'s own delay tiers.
    pub fn new(queue: String, handler: H, limits: Limits) -> Self {
        Self {
            queue,
            handler,
            limits,
        }
    }

    /// Consumes until `shutdown`, then stops taking deliveries and waits for those in
    /// progress. Survives broker reconnections: a new channel and consumer each time.
    pub async fn run(self, services: Services, shutdown: CancellationToken) {
        let this = Arc::new(Running {
            consumer: self,
            services,
        });
        this.run(shutdown).await;
    }
}

impl<H: Handler> Running<H> {
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let Limits { prefetch, .. } = self.consumer.limits;
        let queue = self.consumer.queue.clone();
        let broker = &self.services.broker;
        let permits = self.services.permits.clone();
        let tasks = TaskTracker::new();
        let mut ready = broker.readiness();
        'connect: while !shutdown.is_cancelled() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                alive = until(&mut ready, true) => if !alive { break },
            }
            let channel = match broker.open_channel().await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot open a consumer channel");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let consumer = async {
                channel
                    .basic_qos(prefetch, BasicQosOptions::default())
                    .await?;
                channel
                    .basic_consume(
                        queue.as_str().into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
            };
            let mut consumer = match consumer.await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot start consuming");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            info!(%queue, prefetch, "consuming");
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => {
                        // Stop deliveries first, settle what is in flight on this channel (its
                        // acks need it open), and only then close it: whatever was prefetched
                        // but not started returns to the queue.
                        let _ = channel
                            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                            .await;
                        tasks.close();
                        info!(in_flight = tasks.len(), "waiting for in-flight messages");
                        tasks.wait().await;
                        let _ = channel.close(200, "shutting down".into()).await;
                        return;
                    }
                    alive = until(&mut ready, false) => {
                        if !alive { break 'connect; }
                        continue 'connect;
                    }
                    next = consumer.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break 'connect;
                        };
                        let this = self.clone();
                        tasks.spawn(async move {
                            this.handle(delivery).await;
                            drop(permit);
                        });
                    }
                    Some(Err(e)) => {
                        warn!(error = %e, "consumer failed; reconnecting");
                        continue 'connect;
                    }
                    None => continue 'connect,
                }
            }
        }
        tasks.close();
        info!(in_flight = tasks.len(), "waiting for in-flight messages");
        tasks.wait().await;
    }

    async fn handle(&self, delivery: Delivery) {
        let metrics = &self.services.metrics;
        let started = Instant::now();
        metrics.in_flight.inc();
        let span = tracing::info_span!(
            "wa.consume",
            otel.kind = "consumer",
            otel.name = H::SPAN_NAME,
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.destination.name = %delivery.routing_key,
            messaging.message.id = Empty,
            wa.event = Empty,
            wa.outcome = Empty,
        );
        let headers = delivery.properties.headers().as_ref();
        if let Some(tp) = headers::string(headers, wa_telemetry::TRACEPARENT) {
            wa_telemetry::continue_trace(&span, &tp);
        }
        let attempt = headers::integer(headers, ATTEMPT).unwrap_or(0);
        async {
            let message_id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str());
            let (event, routing_key, disposition) =
                match self.consumer.handler.parse(&delivery.data, message_id) {
                    Err(e) => (
                        None,
                        delivery.routing_key.to_string(),
                        Disposition::DeadLetter {
                            reason: format!("malformed message body: {e}"),
                        },
                    ),
                    Ok(message) => {
                        let span = tracing::Span::current();
                        span.record("messaging.message.id", message.id().as_str());
                        span.record("wa.event", event_label(message.event()));
                        (
                            message.event().map(str::to_owned),
                            message.routing_key(),
                            self.process(&message).await,
                        )
                    }
                };
            let outcome = disposition.outcome();
            tracing::Span::current().record("wa.outcome", outcome.as_str());
            metrics.event(event.as_deref(), outcome);
            let settle = Settle {
                broker: &self.services.broker,
                metrics,
                queue: &self.consumer.queue,
            };
            let fate = settle
                .settle(delivery, disposition, attempt, &routing_key)
                .await;
            self.consumer.handler.settled(fate);
        }
        .instrument(span)
        .await;
        metrics.in_flight.dec();
        metrics
            .processing_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Claims `message`'s id, applies it, then marks it done or gives the claim back.
    async fn process(&self, message: &H::Message) -> Disposition {
        let store = &self.services.store;
        let Limits {
            lease, dedupe_ttl, ..
        } = self.consumer.limits;
        let id = message.id();
        let token = match store.claim(id, lease).await {
            Ok(Claim::Acquired(token)) => token,
            Ok(Claim::Done) => {
                self.services.metrics.duplicate();
                return Disposition::Ack;
            }
            Ok(Claim::InProgress) => {
                return Disposition::Retry {
                    error: "another worker is processing this change".into(),
                    after: None,
                    counts: false,
                };
            }
            Err(e) if e.is_transient() => {
                return Disposition::Retry {
                    error: format!("redis: {e}"),
                    after: None,
                    counts: true,
                };
            }
            Err(e) => {
                return Disposition::DeadLetter {
                    reason: format!("dedupe claim refused: {e}"),
                };
            }
        };
        match self.consumer.handler.apply(message).await {
            Ok(applied) => {
                if applied == Applied::Stale {
                    self.services.metrics.stale();
                }
                // The effects are durable and idempotent either way: a redelivery re-applies
                // nothing. A lost claim means the lease ran out mid-processing and another
                // delivery may have run the same steps: worth knowing, so it is logged.
                match store.complete(id, &token, dedupe_ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!("claim lease expired while processing (WA_CLAIM_LEASE too short?)")
                    }
                    Err(e) => warn!(error = %e, "could not mark the change done"),
                }
                Disposition::Ack
            }
            Err(failure) => {
                let _ = store.release(id, &token).await;
                Disposition::from(failure)
            }
        }
    }
}
