//! The ingress's Prometheus metrics. Label values come from fixed sets (routes we serve,
//! status codes we answer, signature failure reasons, overload reasons), never from request
//! content, and every one of them is exported at 0 from the start: a dashboard shows 0
//! rather than "no data", and a `rate()` alert sees the first failure.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use wa_http::Requests;

/// Labels of `wa_ingress_signature_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `missing`, `malformed` or `mismatch`.
    pub reason: &'static str,
}

/// Labels of `wa_ingress_overload_refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OverloadLabels {
    /// `connections` (closed at accept, past `WA_MAX_CONNECTIONS`) or `unverified_bytes`
    /// (`503`, past `WA_MAX_UNVERIFIED_BYTES`).
    pub reason: &'static str,
}

/// Every route and the statuses it can answer: the series exported at 0 from the start.
pub const ROUTE_STATUSES: &[(&str, &[u16])] = &[
    ("webhook", &[200, 400, 401, 403, 405, 408, 413, 503]),
    ("signup", &[202, 400, 401, 404, 405, 408, 413, 503]),
    ("healthz", &[200, 405]),
    ("readyz", &[200, 405, 503]),
    ("metrics", &[200, 405]),
    ("other", &[404]),
];

/// Every reason `wa_ingress_signature_failures_total` counts.
pub const SIGNATURE_FAILURE_REASONS: &[&str] = &["missing", "malformed", "mismatch"];

/// Every reason `wa_ingress_overload_refusals_total` counts.
pub const OVERLOAD_REASONS: &[&str] = &["connections", "unverified_bytes"];

/// Every metric the ingress exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and answered status.
    pub requests: Requests,
    /// Refused signatures by reason.
    pub signature_failures: Family<ReasonLabels, Counter>,
    /// Connections and requests refused for the unauthenticated bounds.
    pub overload: Family<OverloadLabels, Counter>,
    /// Bytes of unverified webhook bodies reserved right now.
    pub unverified_bytes: Gauge,
    /// Open client connections.
    pub connections: Gauge,
    /// Time from first publish to the last confirm, per request.
    pub publish_seconds: Histogram,
    /// Changes confirmed by the broker.
    pub changes_published: Counter,
    /// Bytes of webhook bodies received (signed or not).
    pub body_bytes: Counter,
    /// 1 while the broker connection is up.
    pub broker_ready: Gauge,
    /// Requests being handled right now.
    pub in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Requests::register(
            &mut registry,
            "wa_ingress_requests",
            "HTTP requests by route and status",
            ROUTE_STATUSES,
        );
        let signature_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "wa_ingress_signature_failures",
            "Webhook deliveries refused for their X-Hub-Signature-256",
            signature_failures.clone(),
        );
        let overload = Family::<OverloadLabels, Counter>::default();
        registry.register(
            "wa_ingress_overload_refusals",
            "Connections closed past WA_MAX_CONNECTIONS, and webhooks answered 503 past \
             WA_MAX_UNVERIFIED_BYTES",
            overload.clone(),
        );
        let unverified_bytes = Gauge::default();
        registry.register(
            "wa_ingress_unverified_bytes",
            "Bytes reserved for webhook bodies whose signature is not checked yet",
            unverified_bytes.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "wa_ingress_connections",
            "Open client connections",
            connections.clone(),
        );
        for &reason in SIGNATURE_FAILURE_REASONS {
            let _ = signature_failures.get_or_create(&ReasonLabels { reason });
        }
        for &reason in OVERLOAD_REASONS {
            let _ = overload.get_or_create(&OverloadLabels { reason });
        }
        // 0.5 ms to ~16 s.
        let publish_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16),
        );
        registry.register(
            "wa_ingress_publish_confirm_seconds",
            "Time to publish a delivery's changes and receive every broker confirm",
            publish_seconds.clone(),
        );
        let changes_published = Counter::default();
        registry.register(
            "wa_ingress_changes_published",
            "Changes published and confirmed by the broker",
            changes_published.clone(),
        );
        let body_bytes = Counter::default();
        registry.register(
            "wa_ingress_received_bytes",
            "Bytes of webhook bodies received",
            body_bytes.clone(),
        );
        let broker_ready = Gauge::default();
        registry.register(
            "wa_ingress_broker_ready",
            "1 while a broker connection with its confirm channels is up and not blocked",
            broker_ready.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "wa_ingress_requests_in_flight",
            "Requests being handled",
            in_flight.clone(),
        );
        wa_telemetry::metrics::register_build_info(&mut registry);
        Self {
            registry,
            requests,
            signature_failures,
            overload,
            unverified_bytes,
            connections,
            publish_seconds,
            changes_published,
            body_bytes,
            broker_ready,
            in_flight,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests.count(route, status);
    }

    /// Counts one refusal for an unauthenticated bound (`connections` or `unverified_bytes`).
    pub fn overloaded(&self, reason: &'static str) {
        self.overload
            .get_or_create(&OverloadLabels { reason })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        wa_telemetry::metrics::encode(&self.registry)
    }
}

/// Adds `amount` to a gauge for as long as it lives, including when hyper drops a request
/// or a connection ends early.
pub(crate) struct Held {
    gauge: Gauge,
    amount: i64,
}

impl Held {
    /// Adds `amount` to `gauge` until dropped.
    pub(crate) fn new(gauge: &Gauge, amount: i64) -> Self {
        gauge.inc_by(amount);
        Self {
            gauge: gauge.clone(),
            amount,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.dec_by(self.amount);
    }
}
