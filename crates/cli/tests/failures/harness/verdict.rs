//! The verdict on a run, from what was acknowledged and what the system says afterwards:
//! nothing lost (every acknowledged install applied), nothing doubled (every tenant one
//! correct application of its install, with its own business's token), nothing in the DLQ,
//! and every repeated token fetch explained by a fault around it.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    time::{Duration, Instant, SystemTime},
};

use secrecy::ExposeSecret as _;
use wa_store::{Status, TokenStatus};

use super::{observation::Observed, stack::Stack, traffic::owner_of};

/// How long after a fault a request sent before it may still reach graph-sim.
const IN_FLIGHT_SLACK: Duration = Duration::from_secs(1);

impl Stack {
    /// Waits until every WABA in `acked` is applied (panicking with those still missing after
    /// `within`: they are LOST), then until the run is quiet, and returns what the tenants
    /// and graph-sim say, judged.
    pub async fn settle(&self, acked: &BTreeSet<String>, within: Duration) -> Settled {
        let until = Instant::now() + within;
        let pending = self.wait_applied(acked, until).await;
        if !pending.is_empty() {
            let mut report = String::new();
            for waba in pending.iter().take(10) {
                let _ = writeln!(
                    report,
                    "  {waba}: {:?}",
                    self.store.get(&super::observation::waba_id_of(waba)).await
                );
            }
            panic!(
                "LOST: {} of {} acknowledged installs not applied within {within:?}; \
                 queues {:?}\n{report}",
                pending.len(),
                acked.len(),
                self.queue_depths().await,
            );
        }
        self.wait_quiet(until).await;
        Settled::judge(self.observe(acked).await)
    }
}

/// The end state of a run.
#[derive(Debug)]
pub struct Settled {
    /// Tenant records under the run's prefix.
    pub tenants: usize,
    /// Installed, token active, subscribed, with the owner of its own install.
    pub active: usize,
    /// Records or tokens that are not as one application of their install leaves them.
    pub inconsistent: Vec<String>,
    /// Token fetches graph-sim answered with a token.
    pub token_fetches: u64,
    /// Businesses whose token was fetched more than once, with when each fetch arrived.
    pub refetched: Vec<(String, Vec<SystemTime>)>,
    /// `subscribed_apps` calls.
    pub subscriptions: u64,
    /// Graph calls graph-sim failed on purpose.
    pub failed_graph_calls: u64,
    /// Messages in the dead-letter queue.
    pub dead_letters: u32,
}

impl Settled {
    fn judge(observed: Observed) -> Self {
        let mut active = 0;
        let mut inconsistent = Vec::new();
        for t in &observed.tenants {
            let ok = t.status == Status::Installed
                && t.token.status == Some(TokenStatus::Active)
                && t.subscribed
                && t.owner_business_id.as_ref().is_some_and(|o| {
                    o.as_str().strip_prefix('2') == t.waba_id.as_str().strip_prefix('1')
                });
            if ok {
                active += 1;
            } else {
                inconsistent.push(format!("{t:?}"));
            }
        }
        for (waba, token) in &observed.tokens {
            let own = format!("sim-{}-", owner_of(waba));
            if !token
                .as_ref()
                .is_some_and(|t| t.expose_secret().starts_with(&own))
            {
                inconsistent.push(format!("{waba}: stored token is not its business's"));
            }
        }
        Self {
            tenants: observed.tenants.len(),
            active,
            inconsistent,
            token_fetches: observed.token_fetches(),
            refetched: observed
                .fetches
                .iter()
                .filter(|(_, times)| times.len() > 1)
                .map(|(business, times)| (business.clone(), times.clone()))
                .collect(),
            subscriptions: observed.count("subscribed_apps"),
            failed_graph_calls: observed.count("failed_transient"),
            dead_letters: observed.dead_letters,
        }
    }

    /// The figures every `RELIABILITY:` line carries.
    pub fn figures(&self) -> String {
        format!(
            "tenants={} token_fetches={} refetches={} subscriptions={} duplicated_effects={} \
             dead_letters={}",
            self.tenants,
            self.token_fetches,
            self.refetches(),
            self.subscriptions,
            self.inconsistent.len(),
            self.dead_letters,
        )
    }

    /// Every fetch but a business's last must have been cut off by a fault: it arrived at
    /// graph-sim within `before` ahead of a fault's start, during the fault (`faults`: start
    /// and end), or within [`IN_FLIGHT_SLACK`] after it (a request a killed worker had already
    /// written reaches graph-sim a moment after the kill). A fetch repeated without a fault is
    /// a doubled effect.
    pub fn assert_refetches_explained(
        &self,
        faults: &[(SystemTime, SystemTime)],
        before: Duration,
    ) {
        for (business, times) in &self.refetched {
            for (k, at) in times[..times.len() - 1].iter().enumerate() {
                let explained = faults
                    .iter()
                    .any(|(start, end)| *at + before >= *start && *at <= *end + IN_FLIGHT_SLACK);
                assert!(
                    explained,
                    "business {business}: fetch {} of {} at {} was repeated without a fault \
                     around it (faults {faults:?})",
                    k + 1,
                    times.len(),
                    humantime::format_rfc3339_millis(*at),
                );
            }
        }
    }

    /// Token fetches beyond one per installed business.
    pub fn refetches(&self) -> u64 {
        self.token_fetches.saturating_sub(self.active as u64)
    }

    /// The checks every test makes: every tenant is one correct application of its install,
    /// each business's token was fetched at least once (`active` tenants, each with a
    /// distinct business, and no fewer fetches), and nothing went to the DLQ.
    pub fn assert_consistent(&self) {
        assert!(
            self.inconsistent.is_empty(),
            "DOUBLED or inconsistent effects: {:#?}",
            self.inconsistent
        );
        assert_eq!(
            self.tenants, self.active,
            "every tenant installed and active"
        );
        assert!(
            self.token_fetches >= self.active as u64,
            "fewer token fetches than active tenants: {self:?}"
        );
        assert_eq!(self.dead_letters, 0, "nothing in the DLQ: {self:?}");
        assert_eq!(
            self.refetches(),
            self.refetched
                .iter()
                .map(|(_, t)| t.len() as u64 - 1)
                .sum::<u64>(),
            "a token fetched for a business with no active tenant, or graph-sim's list of \
             calls incomplete"
        );
    }
}
