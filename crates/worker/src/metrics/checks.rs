//! The metrics of tenant checks and token health: checks by outcome, Graph calls by call and
//! outcome, and the census (`super::census`: tokens by status, tokens expiring within the
//! refresh window and those of them no check reached for a day, tenants needing attention
//! by what). Every label value is known in advance; the counters are exported at 0 from the
//! start. Never a token or a tenant id in a label.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use wa_graph::GraphError;

use super::census::CensusMetrics;

/// How one tenant check ended: the `outcome` label of `wa_worker_tenant_checks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Nothing wrong.
    Healthy,
    /// Something was wrong and the check fixed it (a token refreshed, a subscription
    /// restored).
    Repaired,
    /// Something is wrong that the check could not fix: in the tenant's `attention`.
    Attention,
    /// Not checked: not installed (or uninstalled meanwhile), or its token not fetched yet.
    Skipped,
    /// Another check of the tenant was running: requeued through the first delay tier, not
    /// counted as an attempt.
    Busy,
    /// A transient failure: to a delay tier (each tier once).
    Retry,
    /// Failed for good, at once or once its delay tiers were exhausted: to the dead-letter
    /// queue. Counted once per check dead-lettered, never also as a `retry` for that move.
    Failed,
}

impl CheckOutcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 7] = [
        Self::Healthy,
        Self::Repaired,
        Self::Attention,
        Self::Skipped,
        Self::Busy,
        Self::Retry,
        Self::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Repaired => "repaired",
            Self::Attention => "attention",
            Self::Skipped => "skipped",
            Self::Busy => "busy",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

/// The Graph calls `wa_worker_graph_calls_total` counts.
pub const GRAPH_CALLS: [&str; 5] = [
    "debug_token",
    "token_refresh",
    "subscribed_apps",
    "subscribe_app",
    "phone_numbers",
];
const CALL_OUTCOMES: [&str; 3] = ["ok", "transient", "permanent"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
    outcome: &'static str,
}

/// Tenant check and token health metrics.
pub struct CheckMetrics {
    checks: Family<OutcomeLabels, Counter>,
    graph_calls: Family<CallLabels, Counter>,
    /// The census gauges and runs.
    pub census: CensusMetrics,
}

impl CheckMetrics {
    /// Registers every series, at 0.
    pub fn register(registry: &mut Registry) -> Self {
        let checks = Family::<OutcomeLabels, Counter>::default();
        for outcome in CheckOutcome::ALL {
            let _ = checks.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        registry.register(
            "wa_worker_tenant_checks",
            "Tenant checks by outcome (healthy, repaired, attention, skipped, busy, retry, failed)",
            checks.clone(),
        );
        let graph_calls = Family::<CallLabels, Counter>::default();
        for call in GRAPH_CALLS {
            for outcome in CALL_OUTCOMES {
                let _ = graph_calls.get_or_create(&CallLabels { call, outcome });
            }
        }
        registry.register(
            "wa_worker_graph_calls",
            "Graph calls of tenant checks and token health, by call and outcome",
            graph_calls.clone(),
        );
        let census = CensusMetrics::register(registry);
        Self {
            checks,
            graph_calls,
            census,
        }
    }

    /// Counts one check.
    pub fn check(&self, outcome: CheckOutcome) {
        self.checks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts one Graph call (`call` is one of [`GRAPH_CALLS`]).
    pub fn graph_call<T>(&self, call: &'static str, result: &Result<T, GraphError>) {
        let [ok, transient, permanent] = CALL_OUTCOMES;
        let outcome = match result {
            Ok(_) => ok,
            Err(e) if e.is_transient() => transient,
            Err(_) => permanent,
        };
        self.graph_calls
            .get_or_create(&CallLabels { call, outcome })
            .inc();
    }
}
