//! What the system says about a run, read from outside: the tenants and tokens in Redis, the
//! queue depths in RabbitMQ, the workers' metrics, and graph-sim's `/_sim/calls` (its
//! counters, and each token fetch it received: which business, when, how answered). Waits
//! for the run to be applied and quiet; judges nothing (that is the verdict's part).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt as _;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wa_broker::lapin::{options::QueueDeclareOptions, types::FieldTable};
use wa_store::{Status, TenantRecord, TokenStatus};
use wa_testkit::eventually;

use super::stack::{Role, Stack};

/// What the tenants, the queues and graph-sim say once a run is quiet.
pub struct Observed {
    /// Every tenant record under the run's prefix.
    pub tenants: Vec<TenantRecord>,
    /// Each acknowledged WABA and the business token stored for it (`None`: none).
    pub tokens: Vec<(String, Option<SecretString>)>,
    /// graph-sim's counters (`calls` of `/_sim/calls`).
    pub calls: Value,
    /// Token fetches graph-sim answered with a token, by business id: when each arrived.
    pub fetches: BTreeMap<String, Vec<SystemTime>>,
    /// Messages in the dead-letter queue.
    pub dead_letters: u32,
}

impl Observed {
    /// graph-sim's counter `name` (0 when absent).
    pub fn count(&self, name: &str) -> u64 {
        self.calls[name].as_u64().unwrap_or(0)
    }

    /// Token fetches graph-sim answered with a token, from its counters: every failure it
    /// gives in these tests answers a token call (a subscription comes only after a fetched
    /// token), so the rest are the fetches that succeeded.
    pub fn token_fetches(&self) -> u64 {
        self.count("system_user_access_tokens").saturating_sub(
            self.count("failed_transient")
                + self.count("failed_permanent")
                + self.count("rejected"),
        )
    }
}

impl Stack {
    /// graph-sim's `/_sim/calls` answer (`route`: only the calls received on that route).
    pub async fn graph_calls(&self, route: Option<&str>) -> Value {
        let mut request = self.http.get(format!("{}/_sim/calls", self.graph.base()));
        if let Some(route) = route {
            request = request.query(&[("route", route)]);
        }
        request
            .send()
            .await
            .expect("GET /_sim/calls")
            .json()
            .await
            .expect("/_sim/calls JSON")
    }

    /// Switches graph-sim's failure mode.
    pub async fn graph_mode(&self, mode: Value) {
        let reply = self
            .http
            .post(format!("{}/_sim/mode", self.graph.base()))
            .json(&mode)
            .send()
            .await
            .expect("POST /_sim/mode");
        assert_eq!(reply.status(), 200, "POST /_sim/mode {mode}");
    }

    /// Token fetches graph-sim answered with a token, by business id: when each arrived, in
    /// order.
    async fn fetches_by_business(&self) -> BTreeMap<String, Vec<SystemTime>> {
        let calls = self.graph_calls(Some("system_user_access_tokens")).await;
        let received = calls["received"].as_array().unwrap_or_else(|| {
            panic!("graph-sim's /_sim/calls lists no `received` calls (an older binary?): {calls}")
        });
        assert_eq!(
            calls["received_dropped"], 0,
            "graph-sim no longer holds every call of the run"
        );
        let mut fetches: BTreeMap<String, Vec<SystemTime>> = BTreeMap::new();
        for call in received {
            if call["outcome"] != "ok" {
                continue;
            }
            let business = call["business_id"].as_str().expect("business_id");
            let at = UNIX_EPOCH + Duration::from_millis(call["at_ms"].as_u64().expect("at_ms"));
            fetches.entry(business.to_owned()).or_default().push(at);
        }
        for times in fetches.values_mut() {
            times.sort();
        }
        fetches
    }

    /// Sum over the workers still answering of a metric's samples whose line starts with
    /// `prefix` (a name, or a name and the start of its labels).
    pub async fn worker_metric(&self, prefix: &str) -> f64 {
        let mut total = 0.0;
        for worker in &self.workers {
            total += self.metric(worker, prefix).await;
        }
        total
    }

    /// The same for one role (0 when it does not answer).
    pub async fn metric(&self, role: &Role, prefix: &str) -> f64 {
        let Ok(reply) = self
            .http
            .get(format!("{}/metrics", role.base()))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        else {
            return 0.0;
        };
        let Ok(text) = reply.text().await else {
            return 0.0;
        };
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Ready messages in each queue of this run's topology (unacknowledged ones not
    /// included), by queue name.
    pub async fn queue_depths(&self) -> Vec<(String, u32)> {
        let topology = self.topology();
        let queues = topology.queues();
        let stop = CancellationToken::new();
        let config = wa_broker::BrokerConfig::new(&self.amqp_url, topology).expect("AMQP URL");
        let broker = wa_broker::Broker::start(config, stop.clone());
        assert!(
            broker.wait_ready(Duration::from_secs(10)).await,
            "RabbitMQ not reachable to count the queues"
        );
        let ch = broker.open_channel().await.expect("channel");
        let mut depths = Vec::new();
        for q in queues {
            let declared = ch
                .queue_declare(
                    q.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("queue {q}: {e}"));
            depths.push((q, declared.message_count()));
        }
        let _ = ch.close(200, "counted".into()).await;
        stop.cancel();
        depths
    }

    /// Messages in the dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        let dlq = self.topology().account_update_dlq();
        self.queue_depths()
            .await
            .into_iter()
            .find(|(q, _)| *q == dlq)
            .map_or(0, |(_, n)| n)
    }

    /// Waits until every WABA in `acked` is installed with an active token and subscribed,
    /// or `until` passes; the WABAs still not so.
    pub async fn wait_applied(&self, acked: &BTreeSet<String>, until: Instant) -> BTreeSet<String> {
        let mut pending = acked.clone();
        loop {
            let mut done = Vec::new();
            for waba in &pending {
                if let Ok(Some(t)) = self.store.get(&waba_id_of(waba)).await
                    && t.status == Status::Installed
                    && t.token.status == Some(TokenStatus::Active)
                    && t.subscribed
                {
                    done.push(waba.clone());
                }
            }
            for waba in done {
                pending.remove(&waba);
            }
            if pending.is_empty() || Instant::now() >= until {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the run is quiet: no ready message in any work or delay queue, no message
    /// in progress, graph-sim's counters unchanged for half a second. Whatever the ingress
    /// published without a 200 (a confirm lost with the broker) is processed by then too.
    ///
    /// # Panics
    ///
    /// When `until` passes first.
    pub async fn wait_quiet(&self, until: Instant) {
        let dlq = self.topology().account_update_dlq();
        let mut last: Option<Value> = None;
        loop {
            let calls = self.graph_calls(None).await["calls"].clone();
            let busy = self
                .queue_depths()
                .await
                .iter()
                .any(|(q, n)| *q != dlq && *n > 0)
                || self.worker_metric("wa_worker_in_flight").await > 0.0;
            if !busy && last.as_ref() == Some(&calls) {
                return;
            }
            assert!(
                Instant::now() < until,
                "the run did not go quiet in time: queues {:?}",
                self.queue_depths().await
            );
            last = Some(calls);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What the tenants, the acknowledged WABAs' tokens, graph-sim and the DLQ say now.
    pub async fn observe(&self, acked: &BTreeSet<String>) -> Observed {
        let mut tenants = Vec::new();
        let mut list = self.store.list();
        while let Some(t) = list.next().await {
            tenants.push(t.expect("list tenants"));
        }
        let mut tokens = Vec::new();
        for waba in acked {
            tokens.push((
                waba.clone(),
                self.vault
                    .token(&waba_id_of(waba))
                    .await
                    .expect("read token"),
            ));
        }
        let calls = self.graph_calls(None).await["calls"].clone();
        let mut observed = Observed {
            tenants,
            tokens,
            calls,
            fetches: BTreeMap::new(),
            dead_letters: self.dead_letters().await,
        };
        // A call is counted when it arrives and listed once answered: wait until the list
        // holds every successful fetch the counters show.
        let expected = observed.token_fetches();
        observed.fetches = eventually(
            Duration::from_secs(5),
            "graph-sim listing every token fetch",
            || async {
                let fetches = self.fetches_by_business().await;
                let listed: usize = fetches.values().map(Vec::len).sum();
                (listed as u64 == expected).then_some(fetches)
            },
        )
        .await;
        observed
    }
}

/// `waba` (as the traffic makes them: digits) as a typed WABA id.
pub(super) fn waba_id_of(waba: &str) -> wa_ids::WabaId {
    wa_ids::WabaId::parse(waba).expect("a WABA id")
}
