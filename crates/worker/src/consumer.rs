//! The consume loop: deliveries in, dedupe claim, [`crate::process`], then exactly one of
//! ack, a delay tier, or the dead-letter queue, and only then the ack. A message is never
//! acked before its effects (or its move to another durable queue) are confirmed.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, field::Empty, info, warn};
use wa_broker::{
    Broker, Outgoing,
    lapin::{
        message::Delivery,
        options::{
            BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
            BasicQosOptions,
        },
        types::{AMQPValue, FieldTable},
    },
};
use wa_envelope::ChangeMessage;
use wa_store::{Claim, Store};

use crate::{
    decide,
    metrics::Metrics,
    process::{Effects, Outcome},
};

/// Header: how many delay tiers this message has been through.
pub const ATTEMPT: &str = "x-wa-attempt";
/// Header: the last transient error, token-free.
pub const LAST_ERROR: &str = "x-wa-last-error";
/// Header on dead letters: why.
pub const REASON: &str = "x-wa-reason";
/// Header on dead letters: the routing key to replay to.
pub const ROUTING_KEY: &str = "x-wa-routing-key";

/// Everything one delivery's handling needs.
pub struct Consumer {
    pub(crate) broker: Broker,
    pub(crate) store: Store,
    pub(crate) effects: Effects,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) partner_business_ids: HashSet<wa_ids::BusinessId>,
    pub(crate) dedupe_ttl: Duration,
    pub(crate) lease: Duration,
    pub(crate) prefetch: u16,
    pub(crate) concurrency: usize,
    /// The queue consumed: `wa.account_update`, or `wa.signup_events` (see
    /// [`crate::session`]). Retries go to this queue's own delay tiers.
    pub(crate) queue: String,
}

/// What to do with a delivery once handled.
enum Disposition {
    Ack,
    Retry {
        error: String,
        after: Option<Duration>,
        /// A busy key (another worker holds it) is not a failed attempt.
        counts: bool,
    },
    DeadLetter {
        reason: String,
    },
}

fn header<'a>(delivery: &'a Delivery, name: &str) -> Option<&'a AMQPValue> {
    delivery.properties.headers().as_ref()?.inner().get(name)
}

fn header_i64(delivery: &Delivery, name: &str) -> Option<i64> {
    match header(delivery, name)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}

fn header_str(delivery: &Delivery, name: &str) -> Option<String> {
    match header(delivery, name)? {
        AMQPValue::LongString(v) => Some(v.to_string()),
        AMQPValue::ShortString(v) => Some(v.to_string()),
        _ => None,
    }
}

/// Waits until readiness equals `want`; `false` if the broker handle is gone.
async fn until(ready: &mut tokio::sync::watch::Receiver<bool>, want: bool) -> bool {
    ready.wait_for(|r| *r == want).await.is_ok()
}

impl Consumer {
    /// Consumes until `shutdown`, then stops taking deliveries and waits for those in
    /// progress. Survives broker reconnections: a new channel and consumer each time.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let queue = self.queue.clone();
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let tasks = TaskTracker::new();
        let mut ready = self.broker.readiness();
        'connect: while !shutdown.is_cancelled() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                alive = until(&mut ready, true) => if !alive { break },
            }
            let channel = match self.broker.open_channel().await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot open a consumer channel");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let consumer = async {
                channel
                    .basic_qos(self.prefetch, BasicQosOptions::default())
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
            info!(%queue, prefetch = self.prefetch, concurrency = self.concurrency, "consuming");
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
        let started = Instant::now();
        self.metrics.in_flight.inc();
        let span = tracing::info_span!(
            "wa.consume",
            otel.kind = "consumer",
            otel.name = "account_update process",
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.destination.name = %delivery.routing_key,
            messaging.message.id = Empty,
            wa.event = Empty,
            wa.outcome = Empty,
        );
        if let Some(tp) = header_str(&delivery, wa_telemetry::TRACEPARENT) {
            wa_telemetry::continue_trace(&span, &tp);
        }
        async {
            let attempt = header_i64(&delivery, ATTEMPT).unwrap_or(0);
            let change = serde_json::from_slice::<ChangeMessage>(&delivery.data);
            let (event, disposition) = match &change {
                Err(e) => (
                    None,
                    Disposition::DeadLetter {
                        reason: format!("malformed message body: {e}"),
                    },
                ),
                Ok(change) => {
                    let span = tracing::Span::current();
                    span.record("messaging.message.id", change.id.as_str());
                    let event = decide::event_name(change);
                    span.record("wa.event", crate::metrics::event_label(event));
                    (event.map(str::to_owned), self.process(change).await)
                }
            };
            let outcome = match &disposition {
                Disposition::Ack => "done",
                Disposition::Retry { .. } => "retry",
                Disposition::DeadLetter { .. } => "dead_letter",
            };
            tracing::Span::current().record("wa.outcome", outcome);
            self.metrics.event(event.as_deref(), outcome);
            let routing_key = change.as_ref().map_or_else(
                |_| delivery.routing_key.to_string(),
                ChangeMessage::routing_key,
            );
            self.settle(delivery, disposition, attempt, &routing_key)
                .await;
        }
        .instrument(span)
        .await;
        self.metrics.in_flight.dec();
        self.metrics
            .processing_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    async fn process(&self, change: &ChangeMessage) -> Disposition {
        let claim = match self.store.claim(&change.id, self.lease).await {
            Ok(claim) => claim,
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
        let token = match claim {
            Claim::Done => {
                self.metrics.duplicate();
                return Disposition::Ack;
            }
            Claim::InProgress => {
                return Disposition::Retry {
                    error: "another worker is processing this change".into(),
                    after: None,
                    counts: false,
                };
            }
            Claim::Acquired(token) => token,
        };
        let plan = decide::plan(change, &self.partner_business_ids);
        let outcome = self.effects.run(plan).await;
        match outcome {
            Outcome::Applied | Outcome::Stale => {
                // The effects are durable and idempotent either way: a redelivery re-applies
                // nothing. A lost claim means the lease ran out mid-processing and another
                // delivery may have run the same steps: worth knowing, so it is logged.
                match self
                    .store
                    .complete(&change.id, &token, self.dedupe_ttl)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        warn!("claim lease expired while processing (WA_CLAIM_LEASE too short?)")
                    }
                    Err(e) => warn!(error = %e, "could not mark the change done"),
                }
                Disposition::Ack
            }
            Outcome::Retry { error, after } => {
                let _ = self.store.release(&change.id, &token).await;
                Disposition::Retry {
                    error,
                    after,
                    counts: true,
                }
            }
            Outcome::DeadLetter { reason } => {
                let _ = self.store.release(&change.id, &token).await;
                Disposition::DeadLetter { reason }
            }
        }
    }

    /// Moves the delivery where `disposition` says, then acks it. If the move cannot be
    /// confirmed, the delivery is requeued instead: never lost.
    async fn settle(
        &self,
        delivery: Delivery,
        disposition: Disposition,
        attempt: i64,
        routing_key: &str,
    ) {
        let topology = self.broker.topology();
        let tiers = &topology.retry_delays;
        let forward = match disposition {
            Disposition::Ack => None,
            Disposition::Retry {
                error,
                after,
                counts,
            } => {
                let index = if counts { attempt } else { 0 };
                let remaining =
                    usize::try_from(index).map_or(&[][..], |i| tiers.get(i..).unwrap_or_default());
                // The first remaining tier long enough for the server's requested pause.
                let tier = remaining
                    .iter()
                    .position(|d| after.is_none_or(|a| *d >= a))
                    .or_else(|| (!remaining.is_empty()).then(|| remaining.len() - 1));
                match tier {
                    Some(offset) => {
                        let delay = remaining[offset];
                        let next_attempt = if counts {
                            index + offset as i64 + 1
                        } else {
                            attempt
                        };
                        self.metrics.retry(&wa_broker::delay_label(delay));
                        info!(%error, delay = %wa_broker::delay_label(delay), attempt = next_attempt, "retrying later");
                        Some(
                            self.forward(
                                &delivery,
                                "",
                                &topology.retry_queue_of(&self.queue, delay),
                            )
                            .header_i64(ATTEMPT, next_attempt)
                            .header(LAST_ERROR, error),
                        )
                    }
                    None => Some(self.dead_letter(
                        &delivery,
                        &format!("retries exhausted: {error}"),
                        attempt,
                        routing_key,
                    )),
                }
            }
            Disposition::DeadLetter { reason } => {
                Some(self.dead_letter(&delivery, &reason, attempt, routing_key))
            }
        };
        if let Some(message) = forward
            && let Err(e) = self
                .broker
                .publish_all(std::slice::from_ref(&message))
                .await
        {
            warn!(error = %e, "could not move the message; requeueing it");
            // Not at once: whatever refused it is unlikely to have changed yet.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
            return;
        }
        if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
            // The broker will redeliver it; the dedupe marker makes that harmless.
            warn!(error = %e, "ack failed");
        }
    }

    fn forward(&self, delivery: &Delivery, exchange: &str, routing_key: &str) -> Outgoing {
        Outgoing {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            body: delivery.data.clone(),
            properties: delivery.properties.clone(),
        }
    }

    fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: &str,
        attempt: i64,
        routing_key: &str,
    ) -> Outgoing {
        warn!(%reason, "to the dead-letter queue");
        self.metrics.dead_letter();
        let topology = self.broker.topology();
        self.forward(
            delivery,
            &topology.dlq_exchange(),
            &topology.account_update_queue(),
        )
        .header(REASON, reason)
        .header_i64(ATTEMPT, attempt)
        .header(ROUTING_KEY, routing_key)
    }
}
