//! The ingress's Prometheus metrics. Label values come from fixed sets (routes we serve,
//! status codes we answer, signature failure reasons), never from request content.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of `wa_ingress_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// One of the routes we serve, or `other`.
    pub route: &'static str,
    /// The status code answered.
    pub status: u16,
}

/// Labels of `wa_ingress_signature_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `missing`, `malformed` or `mismatch`.
    pub reason: &'static str,
}

/// Every metric the ingress exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and answered status.
    pub requests: Family<RequestLabels, Counter>,
    /// Refused signatures by reason.
    pub signature_failures: Family<ReasonLabels, Counter>,
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
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "wa_ingress_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let signature_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "wa_ingress_signature_failures",
            "Webhook deliveries refused for their X-Hub-Signature-256",
            signature_failures.clone(),
        );
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
            "1 while a broker connection with its confirm channels is up",
            broker_ready.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "wa_ingress_requests_in_flight",
            "Requests being handled",
            in_flight.clone(),
        );
        let build = Gauge::<i64>::default();
        build.set(1);
        registry
            .sub_registry_with_label(("version".into(), env!("CARGO_PKG_VERSION").into()))
            .register("wa_build_info", "Build of the running binary", build);
        Self {
            registry,
            requests,
            signature_failures,
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
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
