//! Exchange and queue names, and their idempotent declaration.
//!
//! The layout (docs/REFERENCE.md, "Broker topology"), shown for the default prefix `wa`:
//!
//! - `wa.webhooks`: topic exchange every change is published to, routing key
//!   `{object}.{field}`; its alternate exchange `wa.unrouted` (fanout) feeds the quorum queue
//!   `wa.unrouted`, so a change nobody consumes is kept, within a bound of length and age
//!   (`x-max-length`, `x-overflow = drop-head`, `x-message-ttl`: the oldest go first).
//! - `wa.account_update`: quorum queue bound to `*.account_update`, with a delivery limit and
//!   at-least-once dead-lettering to exchange `wa.dlq`, which feeds `wa.account_update.dlq`.
//!   It is also bound to `application.business_integration_install` and
//!   `application.business_integration_uninstall` (topic wildcards match whole words only, so
//!   each is bound by name; `business_integration_update` stays unrouted, i.e. kept).
//! - `wa.signup_events`: quorum queue bound to `embedded_signup.session` (Embedded Signup
//!   session events from the ingress's `/v1/signup-events`), with the same delivery limit and
//!   dead-lettering. Its dead letters share `wa.account_update.dlq` (same routing key on
//!   `wa.dlq`), so `dlq list|replay` covers both queues; a replay routes each message back by
//!   its own routing key. It has its own delay tiers, `wa.signup_events.retry.<delay>`.
//! - `wa.tenant_checks`: quorum queue of tenant checks (`{"waba_id", "reason"}`, published by
//!   `reconcile` on `wa.webhooks` with routing key `tenant.check`, which no Meta object uses,
//!   so a dead-lettered check replays like any other), with the same delivery limit and
//!   dead-lettering (its dead letters share the DLQ too) and its own delay tiers,
//!   `wa.tenant_checks.retry.<delay>`.
//! - `wa.tenant_events`: topic exchange (durable, no alternate) the worker publishes tenant
//!   events to, routing key = the event's type (`tenant.installed`, ...). No queue is bound
//!   here: the partner's services bind their own.
//!
//! Only features RabbitMQ 3.10 already has are used (quorum queues, `x-delivery-limit`,
//! `x-dead-letter-strategy = at-least-once`, message TTL and `drop-head` on quorum queues), so Debian 12's broker, 3.13 and 4.x all work.

use std::time::Duration;

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};

use crate::queue::{bind, declare_quorum, holding_args, millis, string};

/// Names of every exchange and queue, derived from one prefix (`wa` in production; tests use
/// a random one so they never consume each other's messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    /// How many times a message may be delivered from the work queue before the broker
    /// dead-letters it (protects against a message that crashes every worker).
    pub delivery_limit: u32,
    /// Delay tiers of the work queue (`WA_RETRY_DELAYS`): one delay queue each, declared only
    /// when non-empty (the worker sets them; the ingress does not need them).
    pub retry_delays: Vec<Duration>,
    /// Most messages `wa.unrouted` keeps (`WA_UNROUTED_MAX_LENGTH`); past it, the oldest are
    /// dropped.
    pub unrouted_max_length: u64,
    /// Longest a message stays in `wa.unrouted` (`WA_UNROUTED_TTL`).
    pub unrouted_ttl: Duration,
}

/// `WA_UNROUTED_MAX_LENGTH`'s default.
pub const UNROUTED_MAX_LENGTH: u64 = 100_000;
/// `WA_UNROUTED_TTL`'s default: Meta's own retry horizon, seven days.
pub const UNROUTED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for Topology {
    fn default() -> Self {
        Self::new("wa")
    }
}

impl Topology {
    /// The topology under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            delivery_limit: 20,
            retry_delays: Vec::new(),
            unrouted_max_length: UNROUTED_MAX_LENGTH,
            unrouted_ttl: UNROUTED_TTL,
        }
    }

    /// The prefix every name starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topic exchange webhooks are published to (`wa.webhooks`).
    pub fn webhooks_exchange(&self) -> String {
        format!("{}.webhooks", self.prefix)
    }

    /// The alternate exchange and the queue behind it (`wa.unrouted`).
    pub fn unrouted(&self) -> String {
        format!("{}.unrouted", self.prefix)
    }

    /// The `account_update` work queue (`wa.account_update`).
    pub fn account_update_queue(&self) -> String {
        format!("{}.account_update", self.prefix)
    }

    /// The Embedded Signup session event work queue (`wa.signup_events`).
    pub fn signup_events_queue(&self) -> String {
        format!("{}.signup_events", self.prefix)
    }

    /// The tenant check work queue (`wa.tenant_checks`).
    pub fn tenant_checks_queue(&self) -> String {
        format!("{}.tenant_checks", self.prefix)
    }

    /// The topic exchange tenant events are published to (`wa.tenant_events`); consumers bind
    /// their own queues to it.
    pub fn tenant_events_exchange(&self) -> String {
        format!("{}.tenant_events", self.prefix)
    }

    /// The delay queue of one retry tier of `queue` (one of the work queues), e.g.
    /// `wa.signup_events.retry.5s`; it dead-letters back to `queue`.
    pub fn retry_queue_of(&self, queue: &str, delay: Duration) -> String {
        format!("{queue}.retry.{}", delay_label(delay))
    }

    /// Every queue this topology declares, for tools and tests that clean up.
    pub fn queues(&self) -> Vec<String> {
        let mut queues = vec![
            self.unrouted(),
            self.account_update_queue(),
            self.account_update_dlq(),
            self.signup_events_queue(),
            self.tenant_checks_queue(),
        ];
        for work in [
            self.account_update_queue(),
            self.signup_events_queue(),
            self.tenant_checks_queue(),
        ] {
            queues.extend(
                self.retry_delays
                    .iter()
                    .map(|d| self.retry_queue_of(&work, *d)),
            );
        }
        queues
    }

    /// The dead-letter exchange (`wa.dlq`).
    pub fn dlq_exchange(&self) -> String {
        format!("{}.dlq", self.prefix)
    }

    /// The dead-letter queue of the work queue (`wa.account_update.dlq`).
    pub fn account_update_dlq(&self) -> String {
        format!("{}.account_update.dlq", self.prefix)
    }

    /// The delay queue of one retry tier, e.g. `wa.account_update.retry.30s`. Messages wait
    /// there for `delay` (queue TTL), then are dead-lettered back to the work queue.
    pub fn retry_queue(&self, delay: Duration) -> String {
        format!(
            "{}.retry.{}",
            self.account_update_queue(),
            delay_label(delay)
        )
    }

    /// Every exchange this topology declares.
    pub fn exchanges(&self) -> [String; 4] {
        [
            self.webhooks_exchange(),
            self.unrouted(),
            self.dlq_exchange(),
            self.tenant_events_exchange(),
        ]
    }

    /// Deletes every queue and exchange [`Topology::declare`] creates, with whatever they
    /// hold: for tests, benchmarks and tools that work under a throwaway prefix. Deleting one
    /// that does not exist is not an error in RabbitMQ.
    ///
    /// # Errors
    ///
    /// The first broker error (the channel is then closed and the rest is not attempted).
    pub async fn delete(&self, channel: &Channel) -> crate::Result<()> {
        for queue in self.queues() {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in self.exchanges() {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }

    /// `wa.unrouted`'s arguments: kept for people to read, bounded by length and age, the
    /// oldest dropped first (a full queue never refuses a publish, so never fails the ingress).
    fn unrouted_args(&self) -> FieldTable {
        let mut args = holding_args();
        let max_length = i64::try_from(self.unrouted_max_length).unwrap_or(i64::MAX);
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(max_length));
        args.insert("x-overflow".into(), string("drop-head"));
        args.insert("x-message-ttl".into(), millis(self.unrouted_ttl));
        args
    }

    /// Declares exchanges, queues and bindings. Idempotent: declaring again with the same
    /// arguments is a no-op, so every role and every replica does it at start.
    ///
    /// # Errors
    ///
    /// Any broker error; [`crate::BrokerError::Inequivalent`] when an existing queue was
    /// declared with other arguments (the channel is then closed by the broker).
    pub async fn declare(&self, channel: &Channel) -> crate::Result<()> {
        declare_exchange(
            channel,
            &self.unrouted(),
            ExchangeKind::Fanout,
            FieldTable::default(),
        )
        .await?;
        declare_quorum(channel, &self.unrouted(), self.unrouted_args()).await?;
        bind(channel, &self.unrouted(), &self.unrouted(), "").await?;

        let mut args = FieldTable::default();
        args.insert("alternate-exchange".into(), string(self.unrouted()));
        declare_exchange(
            channel,
            &self.webhooks_exchange(),
            ExchangeKind::Topic,
            args,
        )
        .await?;
        declare_exchange(
            channel,
            &self.dlq_exchange(),
            ExchangeKind::Direct,
            FieldTable::default(),
        )
        .await?;
        // No alternate: a tenant event no consumer bound a queue for is nobody's to keep.
        declare_exchange(
            channel,
            &self.tenant_events_exchange(),
            ExchangeKind::Topic,
            FieldTable::default(),
        )
        .await?;
        let work = self.account_update_queue();
        declare_quorum(channel, &self.account_update_dlq(), holding_args()).await?;
        bind(
            channel,
            &self.account_update_dlq(),
            &self.dlq_exchange(),
            &work,
        )
        .await?;

        let mut args = FieldTable::default();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.delivery_limit)),
        );
        args.insert("x-dead-letter-exchange".into(), string(self.dlq_exchange()));
        args.insert("x-dead-letter-routing-key".into(), string(work.clone()));
        args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
        args.insert("x-overflow".into(), string("reject-publish"));
        declare_quorum(channel, &work, args.clone()).await?;
        bind(
            channel,
            &work,
            &self.webhooks_exchange(),
            "*.account_update",
        )
        .await?;
        for key in [
            "application.business_integration_install",
            "application.business_integration_uninstall",
        ] {
            bind(channel, &work, &self.webhooks_exchange(), key).await?;
        }
        // Same arguments, dead letters included (they share the DLQ, see the module header).
        let checks = self.tenant_checks_queue();
        declare_quorum(channel, &checks, args.clone()).await?;
        bind(channel, &checks, &self.webhooks_exchange(), "tenant.check").await?;
        for delay in &self.retry_delays {
            declare_retry(
                channel,
                &self.retry_queue_of(&checks, *delay),
                &checks,
                *delay,
            )
            .await?;
        }
        let signups = self.signup_events_queue();
        declare_quorum(channel, &signups, args).await?;
        bind(
            channel,
            &signups,
            &self.webhooks_exchange(),
            "embedded_signup.session",
        )
        .await?;
        for delay in &self.retry_delays {
            declare_retry(
                channel,
                &self.retry_queue_of(&signups, *delay),
                &signups,
                *delay,
            )
            .await?;
        }

        for delay in &self.retry_delays {
            declare_retry(channel, &self.retry_queue(*delay), &work, *delay).await?;
        }
        Ok(())
    }
}

/// A durable exchange.
async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    args: FieldTable,
) -> crate::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(name.into(), kind, durable, args)
        .await?;
    Ok(())
}

/// A delay queue: messages wait `delay` (queue TTL), then go back to `work`.
async fn declare_retry(
    channel: &Channel,
    name: &str,
    work: &str,
    delay: Duration,
) -> crate::Result<()> {
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), millis(delay));
    // The default exchange routes by queue name: straight back to the work queue.
    args.insert("x-dead-letter-exchange".into(), string(""));
    args.insert("x-dead-letter-routing-key".into(), string(work));
    args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
    args.insert("x-overflow".into(), string("reject-publish"));
    declare_quorum(channel, name, args).await
}

/// `5s`, `2m`, `1h`, or `250ms`: the shortest exact form of a delay, for queue names.
pub fn delay_label(delay: Duration) -> String {
    let ms = delay.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = delay.as_secs();
    match s {
        s if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Topology;

    #[test]
    fn default_names_are_the_documented_ones() {
        let t = Topology::default();
        assert_eq!(t.webhooks_exchange(), "wa.webhooks");
        assert_eq!(t.unrouted(), "wa.unrouted");
        assert_eq!(t.account_update_queue(), "wa.account_update");
        assert_eq!(t.dlq_exchange(), "wa.dlq");
        assert_eq!(t.account_update_dlq(), "wa.account_update.dlq");
        assert_eq!(
            t.retry_queue(Duration::from_secs(30)),
            "wa.account_update.retry.30s"
        );
        assert_eq!(t.signup_events_queue(), "wa.signup_events");
        assert_eq!(t.tenant_checks_queue(), "wa.tenant_checks");
        assert_eq!(t.tenant_events_exchange(), "wa.tenant_events");
        assert_eq!(
            t.retry_queue_of(&t.signup_events_queue(), Duration::from_secs(5)),
            "wa.signup_events.retry.5s"
        );
    }

    #[test]
    fn every_declared_queue_is_listed_for_clean_up() {
        let mut t = Topology::new("x");
        t.retry_delays = vec![Duration::from_secs(5)];
        assert_eq!(
            t.queues(),
            [
                "x.unrouted",
                "x.account_update",
                "x.account_update.dlq",
                "x.signup_events",
                "x.tenant_checks",
                "x.account_update.retry.5s",
                "x.signup_events.retry.5s",
                "x.tenant_checks.retry.5s"
            ]
        );
    }

    #[test]
    fn delay_labels_are_short_and_exact() {
        let label = |ms| super::delay_label(Duration::from_millis(ms));
        assert_eq!(label(5_000), "5s");
        assert_eq!(label(120_000), "2m");
        assert_eq!(label(90_000), "90s");
        assert_eq!(label(21_600_000), "6h");
        assert_eq!(label(250), "250ms");
    }
}
