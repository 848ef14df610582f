//! What a test reads of its world: metrics, tenant records, dead letters, Graph requests,
//! Redis, the tenant events (through a queue of the test's own), and when the queues are
//! idle. It never changes that world.

use std::time::Duration;

use wa_broker::lapin::{options::QueueDeclareOptions, types::FieldTable};
use wa_store::TenantRecord;
use wa_testkit::{Tap, Tapped};

use crate::helpers::{Env, amqp_url, eventually, redis_url, waba_id};

/// A consumer of the test's `wa.tenant_events`, bound to every tenant event.
pub(crate) async fn tap(env: &Env) -> Tap {
    Tap::bind(
        &amqp_url(),
        &env.topology.tenant_events_exchange(),
        "tenant.#",
    )
    .await
}

/// Waits until `tap` received an event of `kind`; returns its body.
pub(crate) async fn event(tap: &Tap, kind: &str) -> serde_json::Value {
    let received = tap
        .wait(Duration::from_secs(15), kind, |r: &[Tapped]| {
            r.iter().any(|m| m.json()["type"] == kind)
        })
        .await;
    received
        .iter()
        .map(Tapped::json)
        .find(|e| e["type"] == kind)
        .expect("waited for it")
}

impl Env {
    pub async fn metrics(&self, worker: usize) -> String {
        reqwest::get(format!("http://{}/metrics", self.ops(worker)))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub async fn tenant(&self, waba: &str) -> Option<TenantRecord> {
        self.store.get(&waba_id(waba)).await.expect("store")
    }

    pub async fn wait_tenant(
        &self,
        waba: &str,
        what: &str,
        pred: impl Fn(&TenantRecord) -> bool,
    ) -> TenantRecord {
        eventually(Duration::from_secs(15), what, || async {
            self.tenant(waba).await.filter(|t| pred(t))
        })
        .await
    }

    pub async fn dead_letters(&self) -> Vec<wa_worker::dlq::DeadLetter> {
        wa_worker::dlq::list(&self.broker).await.expect("dlq list")
    }

    pub async fn wait_dead_letters(&self, n: usize) -> Vec<wa_worker::dlq::DeadLetter> {
        eventually(
            Duration::from_secs(15),
            &format!("{n} dead letters"),
            || async {
                let letters = self.dead_letters().await;
                (letters.len() >= n).then_some(letters)
            },
        )
        .await
    }

    /// Requests wiremock received on `path_suffix`.
    pub async fn graph_calls(&self, path_suffix: &str) -> Vec<wiremock::Request> {
        self.graph
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path().ends_with(path_suffix))
            .collect()
    }

    /// Every value stored under this test's Redis prefix, as bytes.
    pub async fn redis_dump(&self) -> Vec<u8> {
        let client = redis::Client::open(redis_url()).expect("redis");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("conn");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis_prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        let mut out = Vec::new();
        for key in keys {
            let dump: Vec<u8> = redis::cmd("DUMP")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("dump");
            out.extend(key.as_bytes());
            out.extend(dump);
        }
        out
    }

    /// Messages ready in `queue` (not those a consumer holds unacknowledged).
    pub async fn ready(&self, queue: &str) -> u32 {
        let channel = self.broker.open_channel().await.expect("channel");
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let q = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .expect("passive declare");
        q.message_count()
    }

    /// Waits until nothing is left to do for `worker` on `wa.tenant_checks`: the queue and its
    /// delay queues empty, no message in progress, and `letters` dead letters: from then on
    /// no metric of a check changes.
    pub async fn wait_checks_idle(&self, worker: usize, letters: usize) {
        let work = self.topology.tenant_checks_queue();
        let mut queues = vec![work.clone()];
        queues.extend(
            self.topology
                .retry_delays
                .iter()
                .map(|d| self.topology.retry_queue_of(&work, *d)),
        );
        eventually(
            Duration::from_secs(15),
            &format!("tenant checks idle with {letters} dead letters"),
            || async {
                for q in &queues {
                    if self.ready(q).await != 0 {
                        return None;
                    }
                }
                // The letters first: the handler that dead-lettered one is in flight until
                // it has counted it, so a later 0 in flight means it is done.
                if self.dead_letters().await.len() != letters {
                    return None;
                }
                let text = self.metrics(worker).await;
                (metric(&text, "wa_worker_in_flight ") == 0.0).then_some(())
            },
        )
        .await;
    }
}

pub fn status(t: &TenantRecord) -> &'static str {
    t.status.as_str()
}

pub fn token_status(t: &TenantRecord) -> Option<&'static str> {
    t.token.status.map(|s| s.as_str())
}

/// The value of the first metric line starting with `prefix` (0 if none).
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until worker 0's metric line starting with `prefix` reaches `at_least`.
pub async fn wait_metric(env: &Env, prefix: &str, at_least: f64) {
    eventually(
        Duration::from_secs(15),
        &format!("{prefix} >= {at_least}"),
        || async { (metric(&env.metrics(0).await, prefix) >= at_least).then_some(()) },
    )
    .await;
}
