//! The census gauges — installed tenants by token status (`wa_tenant_tokens`), tokens
//! expiring within the refresh window (`wa_tenant_tokens_expiring`) and those of them no
//! check reached for a day (`wa_tenant_tokens_expiring_unchecked`), tenants needing
//! attention (`wa_tenant_attention`), and how old that census is
//! (`wa_tenant_census_age_seconds`) — and the census runs of this replica
//! (`wa_worker_census_runs_total`).
//!
//! One replica at a time counts (the census lease) and publishes its census to Redis; every
//! replica shows the last census published (`CensusMetrics::show`), so each exports the same
//! values and a lease changing hands leaves them as they were. Every series is exported from
//! the start: every status and attention value, at 0 until a census is shown (and when none
//! counted it). The age is taken at scrape time from the census's `counted_at`, or, before
//! this replica has shown one, from its start.

use std::sync::{Arc, Mutex};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::Counter, family::Family, gauge::ConstGauge},
    registry::Registry,
};
use wa_store::{Attention, Census, TokenStatus};

use crate::clock::unix_now;

/// How one census run of this replica ended: the `outcome` label of
/// `wa_worker_census_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CensusRun {
    /// This replica held the lease, counted every tenant and published the census.
    Counted,
    /// Another replica held the lease (or took it mid-walk), or this one sits out after
    /// giving it back: it shows the census published by the holder.
    Skipped,
    /// Redis failed (or a record could not be read) before the count was whole.
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

/// The census gauges and the runs counter.
pub struct CensusMetrics {
    runs: Family<OutcomeLabels, Counter>,
    gauges: Arc<Gauges>,
}

impl CensusMetrics {
    /// Registers the runs counter and the gauges, every series at 0 (no census shown yet).
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
        let gauges = Arc::new(Gauges {
            shown: Mutex::new(None),
            started_at: unix_now(),
        });
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

    /// Exports `census` from now on (the last one published); a status or attention value
    /// it leaves out is 0.
    pub fn show(&self, census: Census) {
        *self.gauges.lock() = Some(census);
    }
}

/// The census this replica shows, and when it started (the age before any census).
#[derive(Debug)]
struct Gauges {
    shown: Mutex<Option<Census>>,
    started_at: i64,
}

impl Gauges {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Census>> {
        // A panic while setting a plain value leaves nothing half-written.
        self.shown
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
        let shown = self.lock().clone();
        let since = shown.as_ref().map_or(self.started_at, |c| c.counted_at);
        let census = shown.unwrap_or_default();
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
                "wa_tenant_census_age_seconds",
                "Seconds since the census the wa_tenant_* gauges show was counted (since this replica started, before it has shown one)",
                unix_now().saturating_sub(since).max(0),
            ),
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
    fn every_gauge_is_exported_at_0_until_a_census_is_shown_then_the_census() {
        let mut registry = Registry::default();
        let metrics = CensusMetrics::register(&mut registry);
        let before = text(&registry);
        for line in [
            "wa_tenant_tokens{status=\"active\"} 0",
            "wa_tenant_tokens{status=\"revoked\"} 0",
            "wa_tenant_tokens_expiring 0",
            "wa_tenant_tokens_expiring_unchecked 0",
            "wa_tenant_attention{attention=\"token_invalid\"} 0",
        ] {
            assert!(before.lines().any(|l| l == line), "{line} in\n{before}");
        }
        assert!(before.contains("wa_tenant_census_age_seconds "), "{before}");
        metrics.show(Census {
            counted_at: unix_now() - 3600,
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
        let age = exported
            .lines()
            .find_map(|l| l.strip_prefix("wa_tenant_census_age_seconds "))
            .and_then(|v| v.parse::<i64>().ok())
            .expect("an age");
        assert!((3600..3700).contains(&age), "counted an hour ago: {age}");
    }
}
