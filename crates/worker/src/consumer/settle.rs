//! Where a handled delivery goes: acked, to the next delay tier of its queue, or to the
//! dead-letter queue, and only then acked. A delivery whose move cannot be confirmed is
//! requeued instead: never lost.
//!
//! Every step is bounded in time, so a settle never holds its concurrency permit for long
//! whatever the broker does: the move is bounded by the broker's confirm timeout and fails at
//! once while the broker blocks publishing (a resource alarm); the ack and the requeue are
//! bounded by [`ACK_TIMEOUT`] (an unanswered ack is redelivered later, which the dedupe
//! marker makes harmless).
//!
//! Owns the delay tier choice and the headers of moved messages; never looks inside a body.

use std::time::Duration;

use tracing::{info, warn};
use wa_broker::{
    Broker, Outgoing,
    lapin::{
        message::Delivery,
        options::{BasicAckOptions, BasicNackOptions},
    },
};

use super::Fate;
use crate::{
    headers::{ATTEMPT, LAST_ERROR, REASON, ROUTING_KEY},
    metrics::{Metrics, Outcome},
    outcome::Failure,
};

/// The longest an ack or a requeue may take before the settle gives up on it.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a refused move waits for the broker to be ready again before requeueing.
const REQUEUE_PAUSE: Duration = Duration::from_secs(5);

/// What to do with a delivery once handled.
pub(super) enum Disposition {
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

impl Disposition {
    /// The name logs, spans and metrics give it.
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            Self::Ack => Outcome::Done,
            Self::Retry { .. } => Outcome::Retry,
            Self::DeadLetter { .. } => Outcome::DeadLetter,
        }
    }
}

impl From<Failure> for Disposition {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Retry { error, after } => Self::Retry {
                error,
                after,
                counts: true,
            },
            Failure::Busy { error } => Self::Retry {
                error,
                after: None,
                counts: false,
            },
            Failure::DeadLetter { reason } => Self::DeadLetter { reason },
        }
    }
}

/// Moves deliveries taken from `queue`.
pub(super) struct Settle<'a> {
    pub(super) broker: &'a Broker,
    pub(super) metrics: &'a Metrics,
    pub(super) queue: &'a str,
}

impl Settle<'_> {
    /// Moves `delivery` where `disposition` says, then acks it, and says where it went.
    /// `attempt` is the delay tiers it has been through; `routing_key` is where a replay of
    /// a dead letter goes.
    pub(super) async fn settle(
        &self,
        delivery: Delivery,
        disposition: Disposition,
        attempt: i64,
        routing_key: &str,
    ) -> Fate {
        let topology = self.broker.topology();
        let tiers = &topology.retry_delays;
        let (fate, forward) = match disposition {
            Disposition::Ack => (Fate::Acked, None),
            Disposition::Retry {
                error,
                after,
                counts,
            } => match next_tier(tiers, attempt, after, counts) {
                Some((delay, next_attempt)) => {
                    self.metrics.retry(&wa_broker::delay_label(delay));
                    info!(%error, delay = %wa_broker::delay_label(delay), attempt = next_attempt, "retrying later");
                    let fate = if counts { Fate::Retried } else { Fate::Busy };
                    let message =
                        forward(&delivery, "", &topology.retry_queue_of(self.queue, delay))
                            .header_i64(ATTEMPT, next_attempt)
                            .header(LAST_ERROR, error);
                    (fate, Some(message))
                }
                None => {
                    let reason = format!("retries exhausted: {error}");
                    let message = self.dead_letter(&delivery, &reason, attempt, routing_key);
                    (Fate::DeadLettered, Some(message))
                }
            },
            Disposition::DeadLetter { reason } => {
                let message = self.dead_letter(&delivery, &reason, attempt, routing_key);
                (Fate::DeadLettered, Some(message))
            }
        };
        if let Some(message) = forward
            && let Err(e) = self
                .broker
                .publish_all(std::slice::from_ref(&message))
                .await
        {
            warn!(error = %e, "could not move the message; requeueing it");
            // Not at once: whatever refused it (a blocked or lost broker, a full pool) is
            // unlikely to have changed yet. At least a moment, at most REQUEUE_PAUSE.
            let pause = tokio::time::sleep(Duration::from_millis(500));
            let _ = tokio::join!(pause, self.broker.wait_ready(REQUEUE_PAUSE));
            let requeue = delivery.nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            });
            if tokio::time::timeout(ACK_TIMEOUT, requeue).await.is_err() {
                warn!("requeue not sent in time; the broker redelivers it with the channel");
            }
            return Fate::Requeued;
        }
        match tokio::time::timeout(ACK_TIMEOUT, delivery.ack(BasicAckOptions::default())).await {
            Ok(Ok(_)) => {}
            // The broker will redeliver it; the dedupe marker makes that harmless.
            Ok(Err(e)) => warn!(error = %e, "ack failed"),
            Err(_) => warn!("ack not sent in time; the broker redelivers it with the channel"),
        }
        fate
    }

    /// Every queue's dead letters share `wa.account_update.dlq`; `x-wa-routing-key` says where
    /// a replay goes.
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
        forward(
            delivery,
            &topology.dlq_exchange(),
            &topology.account_update_queue(),
        )
        .header(REASON, reason)
        .header_i64(ATTEMPT, attempt)
        .header(ROUTING_KEY, routing_key)
    }
}

/// The delay tier a retried delivery goes to, and its attempt count there; `None` when the
/// tiers are exhausted. `attempt` is the tiers it has been through; a retry that does not
/// count (another worker holds the claim) starts again from the first tier and keeps its
/// count. The first remaining tier long enough for the server's requested pause (`after`)
/// is taken, else the longest remaining one.
fn next_tier(
    tiers: &[Duration],
    attempt: i64,
    after: Option<Duration>,
    counts: bool,
) -> Option<(Duration, i64)> {
    let index = if counts { attempt } else { 0 };
    let remaining = usize::try_from(index).map_or(&[][..], |i| tiers.get(i..).unwrap_or_default());
    let offset = remaining
        .iter()
        .position(|d| after.is_none_or(|a| *d >= a))
        .or_else(|| (!remaining.is_empty()).then(|| remaining.len() - 1))?;
    let next_attempt = if counts {
        index + offset as i64 + 1
    } else {
        attempt
    };
    Some((remaining[offset], next_attempt))
}

/// `delivery` as it came, to `routing_key` on `exchange`.
fn forward(delivery: &Delivery, exchange: &str, routing_key: &str) -> Outgoing {
    Outgoing {
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
        body: delivery.data.clone(),
        properties: delivery.properties.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn each_counted_retry_takes_the_next_tier_until_none_is_left() {
        let tiers = [S(5), S(30), S(300)];
        assert_eq!(next_tier(&tiers, 0, None, true), Some((S(5), 1)));
        assert_eq!(next_tier(&tiers, 1, None, true), Some((S(30), 2)));
        assert_eq!(next_tier(&tiers, 2, None, true), Some((S(300), 3)));
        assert_eq!(next_tier(&tiers, 3, None, true), None);
        assert_eq!(next_tier(&[], 0, None, true), None);
    }

    #[test]
    fn a_requested_pause_skips_tiers_too_short_for_it() {
        let tiers = [S(5), S(30), S(300)];
        assert_eq!(next_tier(&tiers, 0, Some(S(20)), true), Some((S(30), 2)));
        assert_eq!(next_tier(&tiers, 0, Some(S(3600)), true), Some((S(300), 3)));
    }

    #[test]
    fn a_busy_key_waits_in_the_first_tier_without_counting_an_attempt() {
        let tiers = [S(5), S(30)];
        assert_eq!(next_tier(&tiers, 2, None, false), Some((S(5), 2)));
    }
}
