//! The worker's Prometheus metrics. Every label comes from a fixed set: Meta's documented
//! event names (anything else is `OTHER`), outcome names, delay tiers from configuration.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use wa_graph::GraphError;

/// The `account_update` events SPEC.md lists; others are counted as `OTHER`.
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
struct OutcomeLabels {
    outcome: &'static str,
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
    /// Time to process one message, from delivery to ack.
    pub processing_seconds: Histogram,
    /// Messages being processed.
    pub in_flight: Gauge,
    /// Embedded Signup session event metrics.
    pub session: crate::session::SessionMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
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
        let session = crate::session::SessionMetrics::register(&mut registry);
        let build = Gauge::<i64>::default();
        build.set(1);
        registry
            .sub_registry_with_label(("version".into(), env!("CARGO_PKG_VERSION").into()))
            .register("wa_build_info", "Build of the running binary", build);
        Self {
            registry,
            events,
            token_fetches,
            retries,
            dead_letters,
            duplicates,
            processing_seconds,
            in_flight,
            session,
        }
    }
}

impl Metrics {
    /// Counts one processed event.
    pub fn event(&self, event: Option<&str>, outcome: &'static str) {
        self.events
            .get_or_create(&EventLabels {
                event: event_label(event),
                outcome,
            })
            .inc();
    }

    /// Counts one token fetch.
    pub fn token_fetch<T>(&self, result: &Result<T, GraphError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) if e.is_transient() => "transient",
            Err(_) => "permanent",
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

    /// Counts one duplicate delivery.
    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
