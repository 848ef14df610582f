//! The worker's Prometheus metrics, and the names they, the logs and the spans share: what
//! became of a delivery ([`Outcome`]) and which event it was ([`event_label`]).
//!
//! Every label comes from a fixed or bounded set: Meta's documented event names (anything
//! else is `OTHER`), outcome names, delay tiers from configuration, and at most
//! [`MAX_LABELS`] browser-supplied signup steps and error codes. Every label value known in
//! advance (event × outcome, token fetch outcomes, configured delay tiers, signup kinds) is
//! exported at 0 from the start, so a dashboard shows 0 rather than "no data" and a `rate()`
//! alert sees the first increment. Signup session metrics are in `session`, tenant check and
//! token health metrics in `checks`. This module imports nothing else of the crate; it never
//! touches the broker, Redis or the Graph API.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use wa_graph::GraphError;

pub use self::{
    census::{CensusMetrics, CensusRun},
    checks::{CheckMetrics, CheckOutcome},
    session::SessionMetrics,
};

mod census;
mod checks;
mod session;

/// How many distinct signup steps, and error codes, become metric labels.
pub const MAX_LABELS: usize = 32;

/// What became of one delivery: the `outcome` label of `wa_worker_events_total` and the
/// `wa.outcome` span field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acked: applied, stale or a duplicate.
    Done,
    /// Failed transiently: to a delay tier, or to the dead-letter queue once the tiers are
    /// exhausted.
    Retry,
    /// Cannot be applied: to the dead-letter queue.
    DeadLetter,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 3] = [Self::Done, Self::Retry, Self::DeadLetter];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retry => "retry",
            Self::DeadLetter => "dead_letter",
        }
    }
}

/// The `account_update` events docs/REFERENCE.md lists; others are counted as `OTHER`.
const KNOWN_EVENTS: &[&str] = &[
    "PARTNER_APP_INSTALLED",
    "PARTNER_APP_UNINSTALLED",
    "PARTNER_ADDED",
    "PARTNER_REMOVED",
    "ACCOUNT_DELETED",
    "ACCOUNT_OFFBOARDED",
    "ACCOUNT_RECONNECTED",
    "DISABLED_UPDATE",
    "ACCOUNT_RESTRICTION",
    "ACCOUNT_VIOLATION",
    "AD_ACCOUNT_LINKED",
    "MM_LITE_TERMS_SIGNED",
    "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE",
    "VOLUME_BASED_PRICING_TIER_UPDATE",
    "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE",
    "PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE",
    // Business integration webhooks (their field) and Embedded Signup session events.
    "business_integration_install",
    "business_integration_uninstall",
    "FINISH",
    "FINISH_ONLY_WABA",
    "FINISH_GRANT_ONLY_API_ACCESS",
    // Tenant checks (`wa.tenant_checks`).
    "TENANT_CHECK",
    "CANCEL",
];

/// A bounded label for an event name.
pub fn event_label(event: Option<&str>) -> &'static str {
    match event {
        None => "NONE",
        Some(e) => KNOWN_EVENTS
            .iter()
            .find(|k| **k == e)
            .copied()
            .unwrap_or("OTHER"),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OtherAppLabels {
    event: &'static str,
}

/// The events `wa_worker_other_app_events_total` counts.
const APP_EVENTS: [&str; 2] = ["PARTNER_APP_INSTALLED", "PARTNER_APP_UNINSTALLED"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: String,
}

/// Every metric the worker exports.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    token_fetches: Family<OutcomeLabels, Counter>,
    retries: Family<TierLabels, Counter>,
    dead_letters: Counter,
    duplicates: Counter,
    stale: Counter,
    other_app: Family<OtherAppLabels, Counter>,
    tenant_events: Family<TypeLabels, Counter>,
    /// Time to process one message, from delivery to ack.
    pub processing_seconds: Histogram,
    /// Messages being processed.
    pub in_flight: Gauge,
    /// Embedded Signup session event metrics.
    pub session: SessionMetrics,
    /// Tenant check and token health metrics.
    pub checks: CheckMetrics,
}

/// The outcomes `wa_worker_token_fetches_total` counts.
const TOKEN_FETCH_OUTCOMES: [&str; 3] = ["ok", "transient", "permanent"];

impl Default for Metrics {
    /// The metrics of a worker without delay tiers.
    fn default() -> Self {
        Self::new(&[])
    }
}

impl Metrics {
    /// Registers every metric, with a series at 0 for each label value known in advance:
    /// `retry_tiers` are the configured delay tiers (`WA_RETRY_DELAYS`).
    pub fn new(retry_tiers: &[Duration]) -> Self {
        let mut registry = Registry::default();
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "wa_worker_events",
            "Events processed (account_update, business integration, signup session), by event and outcome",
            events.clone(),
        );
        let token_fetches = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "wa_worker_token_fetches",
            "Business token fetches by outcome (ok, transient, permanent)",
            token_fetches.clone(),
        );
        let retries = Family::<TierLabels, Counter>::default();
        registry.register(
            "wa_worker_retries",
            "Messages sent to a delay tier",
            retries.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "wa_worker_dlq_publishes",
            "Messages sent to the dead-letter queue",
            dead_letters.clone(),
        );
        let duplicates = Counter::default();
        registry.register(
            "wa_worker_duplicates",
            "Deliveries whose dedupe key was already done",
            duplicates.clone(),
        );
        let stale = Counter::default();
        registry.register(
            "wa_worker_stale",
            "Messages acked as stale: older than the tenant's state, or superseded while their effects ran",
            stale.clone(),
        );
        let other_app = Family::<OtherAppLabels, Counter>::default();
        for event in APP_EVENTS {
            other_app.get_or_create(&OtherAppLabels { event }).inc_by(0);
        }
        registry.register(
            "wa_worker_other_app_events",
            "Installs and uninstalls naming another app than WA_APP_ID: acked, not applied",
            other_app.clone(),
        );
        let tenant_events = Family::<TypeLabels, Counter>::default();
        registry.register(
            "wa_worker_tenant_events_published",
            "Tenant events published to wa.tenant_events and confirmed, by type",
            tenant_events.clone(),
        );
        let processing_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "wa_worker_processing_seconds",
            "Time to process one message, delivery to ack",
            processing_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "wa_worker_in_flight",
            "Messages being processed",
            in_flight.clone(),
        );
        let session = SessionMetrics::register(&mut registry);
        let checks = CheckMetrics::register(&mut registry);
        for event in KNOWN_EVENTS.iter().chain(&["NONE", "OTHER"]) {
            for outcome in Outcome::ALL {
                let _ = events.get_or_create(&EventLabels {
                    event,
                    outcome: outcome.as_str(),
                });
            }
        }
        for outcome in TOKEN_FETCH_OUTCOMES {
            let _ = token_fetches.get_or_create(&OutcomeLabels { outcome });
        }
        for tier in retry_tiers {
            let _ = retries.get_or_create(&TierLabels {
                tier: wa_broker::delay_label(*tier),
            });
        }
        wa_telemetry::metrics::register_build_info(&mut registry);
        Self {
            registry,
            events,
            token_fetches,
            retries,
            dead_letters,
            duplicates,
            stale,
            other_app,
            tenant_events,
            processing_seconds,
            in_flight,
            session,
            checks,
        }
    }

    /// Counts one processed event.
    pub fn event(&self, event: Option<&str>, outcome: Outcome) {
        self.events
            .get_or_create(&EventLabels {
                event: event_label(event),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts one token fetch.
    pub fn token_fetch<T>(&self, result: &Result<T, GraphError>) {
        let [ok, transient, permanent] = TOKEN_FETCH_OUTCOMES;
        let outcome = match result {
            Ok(_) => ok,
            Err(e) if e.is_transient() => transient,
            Err(_) => permanent,
        };
        self.token_fetches
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one message sent to the delay tier `tier`.
    pub fn retry(&self, tier: &str) {
        self.retries
            .get_or_create(&TierLabels {
                tier: tier.to_owned(),
            })
            .inc();
    }

    /// Counts one message sent to the dead-letter queue.
    pub fn dead_letter(&self) {
        self.dead_letters.inc();
    }

    /// Counts one message acked as stale.
    pub fn stale(&self) {
        self.stale.inc();
    }

    /// Counts one install or uninstall naming another app.
    pub fn other_app(&self, event: &str) {
        let event = APP_EVENTS
            .iter()
            .find(|e| **e == event)
            .copied()
            .unwrap_or("OTHER");
        self.other_app
            .get_or_create(&OtherAppLabels { event })
            .inc();
    }

    /// Exports the tenant event type `r#type` at 0 (the types are the publisher's to know).
    pub fn tenant_event_type(&self, r#type: &'static str) {
        let _ = self.tenant_events.get_or_create(&TypeLabels { r#type });
    }

    /// Counts one tenant event published and confirmed.
    pub fn tenant_event_published(&self, r#type: &'static str) {
        self.tenant_events
            .get_or_create(&TypeLabels { r#type })
            .inc();
    }

    /// Counts one duplicate delivery.
    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        wa_telemetry::metrics::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels_are_the_ones_dashboards_query() {
        let labels = Outcome::ALL.map(Outcome::as_str);
        assert_eq!(labels, ["done", "retry", "dead_letter"]);
    }
}
