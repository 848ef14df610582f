//! The API's Prometheus metrics. Label values come from fixed sets (the routes served, the
//! statuses answered, the caller names of `WA_API_TOKENS`), never from request content; every
//! route's and every caller's series exist, at 0, from the start.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use wa_http::Requests;

/// Labels of `wa_api_token_reads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenReadLabels {
    /// The caller's name in `WA_API_TOKENS`.
    pub caller: String,
    /// `served`, `not_found` or `error`.
    pub outcome: &'static str,
}

/// Every route label and the statuses it can answer: their request series exist from the
/// start, at 0.
const ROUTE_STATUSES: [(&str, &[u16]); 8] = [
    ("tenants", &[200, 400, 401, 405, 500, 503]),
    ("tenant", &[200, 400, 401, 404, 405, 500, 503]),
    ("tenant_token", &[200, 400, 401, 404, 405, 500, 503]),
    ("funnel", &[200, 400, 401, 405, 500, 503]),
    ("healthz", &[200, 400, 405]),
    ("readyz", &[200, 400, 405, 503]),
    ("metrics", &[200, 400, 401, 405]),
    ("other", &[401, 404]),
];

/// The outcomes of a token read.
pub const TOKEN_OUTCOMES: [&str; 3] = ["served", "not_found", "error"];

/// Every metric the API exports.
pub struct Metrics {
    registry: Registry,
    requests: Requests,
    token_reads: Family<TokenReadLabels, Counter>,
    /// 1 while Redis answered the last readiness check.
    pub redis_ready: Gauge,
}

impl Metrics {
    /// The metrics, with a token-read series per caller and outcome at 0.
    pub fn new<'a>(callers: impl Iterator<Item = &'a str>) -> Self {
        let mut registry = Registry::default();
        let requests = Requests::register(
            &mut registry,
            "wa_api_requests",
            "Internal API requests by route and status",
            &ROUTE_STATUSES,
        );
        let token_reads = Family::<TokenReadLabels, Counter>::default();
        registry.register(
            "wa_api_token_reads",
            "Business token reads by caller and outcome",
            token_reads.clone(),
        );
        for caller in callers {
            for outcome in TOKEN_OUTCOMES {
                let _ = token_reads.get_or_create(&TokenReadLabels {
                    caller: caller.to_owned(),
                    outcome,
                });
            }
        }
        let redis_ready = Gauge::default();
        registry.register(
            "wa_api_redis_ready",
            "1 while Redis answered the last readiness check",
            redis_ready.clone(),
        );
        wa_telemetry::metrics::register_build_info(&mut registry);
        Self {
            registry,
            requests,
            token_reads,
            redis_ready,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests.count(route, status);
    }

    /// Counts one token read by `caller`.
    pub fn token_read(&self, caller: &str, outcome: &'static str) {
        self.token_reads
            .get_or_create(&TokenReadLabels {
                caller: caller.to_owned(),
                outcome,
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        wa_telemetry::metrics::encode(&self.registry)
    }
}
