//! The census gauges — installed tenants by token status (`wa_tenant_tokens`), tokens
//! expiring within the refresh window (`wa_tenant_tokens_expiring`) and those of them no
//! check reached for a day (`wa_tenant_tokens_expiring_unchecked`), tenants needing
//! attention (`wa_tenant_attention`) — and the census runs of this replica
//! (`wa_worker_census_runs_total`).
//!
//! One replica at a time counts (the census lease), so the gauges are exported only by the
//! replica that holds the lease and has counted; every other replica exports none of them
//! (not 0, not its own older count). Across replicas, `max` or `sum` is therefore the
//! holder's count, with no stale series of a former holder mixed in; while the lease changes
//! hands two replicas may briefly export the same count (`max` stays right, `sum` doubles
//! for a scrape or two, which is why the alerts and panels use `max`). Every status and
//! attention value is exported, at 0 when none, whenever the gauges are.

use std::sync::Mutex;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::Counter, family::Family, gauge::ConstGauge},
    registry::Registry,
};
use wa_store::{Attention, TokenStatus};

/// What one walk over every tenant counted ([`CensusMetrics::counted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Installed tenants by token status.
    pub tokens: Vec<(TokenStatus, i64)>,
    /// Installed tenants whose active token expires within `WA_TOKEN_REFRESH_BEFORE`.
    pub expiring: i64,
    /// Of `expiring`, those no check reached for `crate::census::UNCHECKED_AFTER` (their
    /// `token.checked_at` older, or unknown).
    pub expiring_unchecked: i64,
    /// Installed tenants by what needs attention.
    pub attention: Vec<(Attention, i64)>,
}

/// How one census run of this replica ended: the `outcome` label of
/// `wa_worker_census_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CensusRun {
    /// This replica held the lease and counted every tenant.
    Counted,
    /// Another replica held the lease (or took it mid-walk): nothing exported.
    Skipped,
    /// Redis failed before the count was whole.
    Failed,
}

impl CensusRun {
    const ALL: [Self; 3] = [Self::Counted, Self::Skipped, Self::Failed];

    fn as_str(self) -> &'static str {
        match self {
            Self::Counted => "counted",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttentionLabels {
    attention: &'static str,
}

/// The census gauges (exported only while set) and the runs counter.
pub struct CensusMetrics {
    runs: Family<OutcomeLabels, Counter>,
    gauges: std::sync::Arc<Gauges>,
}

impl CensusMetrics {
    /// Registers the runs counter (every outcome at 0) and the gauges (none exported yet).
    pub fn register(registry: &mut Registry) -> Self {
        let runs = Family::<OutcomeLabels, Counter>::default();
        for run in CensusRun::ALL {
            let _ = runs.get_or_create(&OutcomeLabels {
                outcome: run.as_str(),
            });
        }
        registry.register(
            "wa_worker_census_runs",
            "Census runs of this replica: counted (it held the census lease), skipped (another replica did), failed",
            runs.clone(),
        );
        let gauges = std::sync::Arc::new(Gauges::default());
        registry.register_collector(Box::new(gauges.clone()));
        Self { runs, gauges }
    }

    /// Counts one census run.
    pub fn run(&self, run: CensusRun) {
        self.runs
            .get_or_create(&OutcomeLabels {
                outcome: run.as_str(),
            })
            .inc();
    }

    /// Exports `census` from now on; a status or attention value it leaves out is 0.
    pub fn counted(&self, census: Census) {
        *self.gauges.lock() = Some(census);
    }

    /// Exports no census gauge from now on: this replica does not hold the lease.
    pub fn forget(&self) {
        *self.gauges.lock() = None;
    }
}

/// The last count of this replica while it holds the lease.
#[derive(Debug, Default)]
struct Gauges(Mutex<Option<Census>>);

impl Gauges {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Census>> {
        // A panic while setting a plain value leaves nothing half-written.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn count_of<T: PartialEq>(counts: &[(T, i64)], key: &T) -> i64 {
    counts.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

/// One gauge family: `name` with one series per `(labels, value)`.
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, n) in series {
        ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Gauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(census) = self.lock().clone() else {
            return Ok(());
        };
        let tokens = TokenStatus::ALL.map(|s| {
            let labels = StatusLabels { status: s.as_str() };
            (labels, count_of(&census.tokens, &s))
        });
        family(
            &mut encoder,
            "wa_tenant_tokens",
            "Installed tenants by business token status, as of the last census",
            tokens,
        )?;
        let single = [
            (
                "wa_tenant_tokens_expiring",
                "Installed tenants whose active token expires within WA_TOKEN_REFRESH_BEFORE, as of the last census",
                census.expiring,
            ),
            (
                "wa_tenant_tokens_expiring_unchecked",
                "Of wa_tenant_tokens_expiring, the tokens no check reached for 26 hours, as of the last census",
                census.expiring_unchecked,
            ),
        ];
        for (name, help, n) in single {
            let gauge = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(n).encode(gauge)?;
        }
        let attention = Attention::ALL.map(|a| {
            let labels = AttentionLabels {
                attention: a.as_str(),
            };
            (labels, count_of(&census.attention, &a))
        });
        family(
            &mut encoder,
            "wa_tenant_attention",
            "Installed tenants needing attention, by what a check found, as of the last census",
            attention,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn the_gauges_are_exported_only_while_this_replica_has_a_count() {
        let mut registry = Registry::default();
        let metrics = CensusMetrics::register(&mut registry);
        assert!(!text(&registry).contains("wa_tenant_"));
        metrics.counted(Census {
            tokens: vec![(TokenStatus::Active, 3)],
            expiring: 2,
            expiring_unchecked: 1,
            attention: vec![(Attention::TokenExpiring, 1)],
        });
        let exported = text(&registry);
        for line in [
            "wa_tenant_tokens{status=\"active\"} 3",
            "wa_tenant_tokens{status=\"invalid\"} 0",
            "wa_tenant_tokens_expiring 2",
            "wa_tenant_tokens_expiring_unchecked 1",
            "wa_tenant_attention{attention=\"token_expiring\"} 1",
            "wa_tenant_attention{attention=\"not_subscribed\"} 0",
            "wa_worker_census_runs_total{outcome=\"counted\"} 0",
        ] {
            assert!(exported.lines().any(|l| l == line), "{line} in\n{exported}");
        }
        metrics.forget();
        assert!(!text(&registry).contains("wa_tenant_"));
    }
}
