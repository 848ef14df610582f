//! The stack under test: graph-sim, one ingress and N workers, child processes of the real
//! binary under a fresh queue prefix and Redis prefix, each started on port 0 (its address
//! read from its `listening` event) and waited on until ready; workers killed and replaced;
//! everything the run declared or wrote removed on drop. Sends no traffic and judges nothing.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use wa_store::{Store, TokenKey, TokenVault};
use wa_testkit::{Listening, eventually, redis_url};

use super::{APP_SECRET, rabbitmq};

/// The binary under test, built by Cargo for this test run.
const BIN: &str = env!("CARGO_BIN_EXE_wa-onboard");
/// Short delay tiers (about 16 s in all) so a change survives a several-second outage of
/// Redis or the Graph API without reaching the DLQ, and the tests stay fast.
const RETRY_DELAYS: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];
/// Short, so a change claimed by a killed worker is taken over within seconds.
const CLAIM_LEASE: &str = "3s";
/// How long a role may take to say where it listens, then to answer `/readyz`.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// `wa-onboard ROLE` with only `PATH` and `RUST_LOG` from the environment. Its log is kept
/// (the last lines go into failure messages), not printed, unless `TEST_LOG` is set.
fn wa_onboard(role: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.arg(role)
        .env("RUST_LOG", "info,lapin=warn")
        .stdin(std::process::Stdio::null());
    cmd
}

/// A running role: the child process, started on port 0, and where it listens.
pub struct Role {
    pub name: String,
    process: Listening,
}

impl Role {
    async fn spawn(name: String, cmd: Command) -> Self {
        let process = Listening::spawn(cmd, START_DEADLINE).await;
        Self { name, process }
    }

    /// `http://` and the address it reported.
    pub fn base(&self) -> String {
        self.process.base()
    }

    /// Whether `path` answers 200 right now.
    pub async fn answers(&self, http: &reqwest::Client, path: &str) -> bool {
        http.get(format!("{}{path}", self.base()))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    /// Waits until `path` answers 200, failing (with its last log lines) if the process exits
    /// first.
    pub async fn wait_for(&mut self, http: &reqwest::Client, path: &str, within: Duration) {
        let what = format!("wa-onboard {} {path} answering 200", self.name);
        let url = format!("{}{path}", self.base());
        let process = &mut self.process;
        eventually(within, &what, || {
            process.assert_running();
            let request = http.get(&url).timeout(Duration::from_secs(2)).send();
            async move { request.await.ok().filter(|r| r.status() == 200).map(drop) }
        })
        .await;
    }

    /// SIGKILL, and reaps the process.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }
}

/// How many workers, where they reach Redis (a test may put a proxy in between), where the
/// test reads and removes the run's keys (a Redis Cluster's nodes, comma-separated), and which
/// RabbitMQ every role uses.
pub struct Options {
    pub workers: usize,
    pub worker_redis_url: String,
    pub redis_url: String,
    /// `AMQP_URL` of the ingress and the workers: the suite's own node by default; the
    /// 3-node cluster with [`Options::on_cluster`].
    pub amqp_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            worker_redis_url: redis_url(),
            redis_url: redis_url(),
            amqp_url: rabbitmq::amqp_url(),
        }
    }
}

impl Options {
    /// Every role on the 3-node RabbitMQ cluster (`AMQP_URL` listing its nodes), started
    /// when it is not running.
    pub fn on_cluster() -> Self {
        wa_testkit::ensure_rabbitmq_cluster();
        Self {
            amqp_url: wa_testkit::amqp_cluster_url(),
            ..Self::default()
        }
    }
}

/// graph-sim, one ingress and `workers` workers under a fresh queue prefix and Redis prefix.
pub struct Stack {
    pub http: reqwest::Client,
    /// `AMQP_URL` of every role (one node, or the cluster's list).
    pub amqp_url: String,
    pub amqp_prefix: String,
    pub redis_prefix: String,
    key_base64: String,
    worker_redis_url: String,
    redis_url: String,
    /// The test's own view of the tenants (same prefix and key as the workers).
    pub store: Store,
    /// The store's tokens, readable with the workers' key.
    pub vault: TokenVault,
    pub graph: Role,
    pub ingress: Role,
    pub workers: Vec<Role>,
    /// Digits that make this run's WABA and business ids unique.
    pub(super) run: u32,
}

impl Stack {
    pub async fn start(options: Options) -> Self {
        if options.amqp_url == rabbitmq::amqp_url() {
            rabbitmq::ensure_node();
        }
        let key = rand::random::<[u8; 32]>();
        let redis_prefix = format!("wa-failures:{:016x}:", rand::random::<u64>());
        let store = Store::connect(&options.redis_url, &redis_prefix)
            .await
            .expect("Redis must be running (REDIS_URL, or scripts/services.sh)");
        let vault = store.with_token_key(TokenKey::from_bytes(&key).expect("32 bytes"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client");

        let mut cmd = wa_onboard("graph-sim");
        cmd.env("WA_GRAPH_SIM_LISTEN", "127.0.0.1:0")
            .env("WA_APP_SECRET", APP_SECRET);
        let graph = Role::spawn("graph-sim".into(), cmd).await;

        let amqp_prefix = format!("wa-failures-{:016x}", rand::random::<u64>());
        let mut cmd = wa_onboard("ingress");
        cmd.env("WA_LISTEN", "127.0.0.1:0")
            .env("WA_APP_SECRET", APP_SECRET)
            .env("WA_VERIFY_TOKEN", "failure-test-verify-token")
            .env("AMQP_URL", &options.amqp_url)
            .env("WA_AMQP_PREFIX", &amqp_prefix);
        let ingress = Role::spawn("ingress".into(), cmd).await;

        let mut stack = Self {
            http,
            amqp_url: options.amqp_url,
            amqp_prefix,
            redis_prefix,
            key_base64: STANDARD.encode(key),
            worker_redis_url: options.worker_redis_url,
            redis_url: options.redis_url,
            store,
            vault,
            graph,
            ingress,
            workers: Vec::new(),
            run: rand::random_range(10_000_000..100_000_000),
        };
        for i in 0..options.workers {
            let worker = stack.spawn_worker(i).await;
            stack.workers.push(worker);
        }
        let http = stack.http.clone();
        stack
            .graph
            .wait_for(&http, "/_sim/calls", START_DEADLINE)
            .await;
        stack
            .ingress
            .wait_for(&http, "/readyz", START_DEADLINE)
            .await;
        for worker in &mut stack.workers {
            worker.wait_for(&http, "/readyz", START_DEADLINE).await;
        }
        stack
    }

    async fn spawn_worker(&self, i: usize) -> Role {
        let delays: Vec<String> = RETRY_DELAYS
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        let mut cmd = wa_onboard("worker");
        cmd.env("WA_METRICS_LISTEN", "127.0.0.1:0")
            .env("WA_APP_SECRET", APP_SECRET)
            .env("WA_SYSTEM_USER_ID", "61550000000001")
            .env("WA_APP_ID", "1061231232323117")
            .env("WA_SYSTEM_USER_TOKEN", "failure-test-system-user-token")
            .env("WA_TOKEN_KEY", &self.key_base64)
            .env("WA_GRAPH_BASE", self.graph.base())
            .env("WA_RETRY_DELAYS", delays.join(","))
            .env("WA_CLAIM_LEASE", CLAIM_LEASE)
            .env("AMQP_URL", &self.amqp_url)
            .env("WA_AMQP_PREFIX", &self.amqp_prefix)
            .env("REDIS_URL", &self.worker_redis_url)
            .env("WA_REDIS_PREFIX", &self.redis_prefix);
        Role::spawn(format!("worker-{i}"), cmd).await
    }

    /// Replaces worker `i` (already killed) with a fresh process, ready.
    pub async fn restart_worker(&mut self, i: usize) {
        let mut worker = self.spawn_worker(i).await;
        worker.wait_for(&self.http, "/readyz", START_DEADLINE).await;
        self.workers[i] = worker;
    }

    /// What `wa-onboard tenants list` prints for this run (on the Redis the test reads): the
    /// WABA id of each record, in the order printed.
    pub async fn tenants_list(&self) -> Vec<String> {
        let out = wa_onboard("tenants")
            .arg("list")
            .env("REDIS_URL", &self.redis_url)
            .env("WA_REDIS_PREFIX", &self.redis_prefix)
            .output()
            .await
            .expect("run wa-onboard tenants list");
        assert!(out.status.success(), "tenants list: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
                record["waba_id"].as_str().expect("waba_id").to_owned()
            })
            .collect()
    }

    /// This run's exchanges and queues.
    pub fn topology(&self) -> wa_broker::Topology {
        let mut topology = wa_broker::Topology::new(self.amqp_prefix.clone());
        topology.retry_delays = RETRY_DELAYS.to_vec();
        topology
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Synchronous on purpose, so it runs after a panic too: the children are killed
        // first (no worker re-declares what is being deleted), then the queues, exchanges and
        // keys of this run are removed from a thread with its own runtime.
        for role in self
            .workers
            .iter_mut()
            .chain([&mut self.ingress, &mut self.graph])
        {
            role.process.start_kill();
        }
        let topology = self.topology();
        let amqp_url = self.amqp_url.clone();
        let prefix = self.redis_prefix.clone();
        let url = self.redis_url.clone();
        let cleanup = std::thread::spawn(move || {
            wa_testkit::forget_redis_prefix(&url, &prefix);
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(delete_topology(&amqp_url, topology));
        });
        let _ = cleanup.join();
    }
}

async fn delete_topology(amqp_url: &str, topology: wa_broker::Topology) {
    let Ok(config) = wa_broker::BrokerConfig::new(amqp_url, topology.clone()) else {
        return;
    };
    let stop = CancellationToken::new();
    let broker = wa_broker::Broker::start(config, stop.clone());
    if broker.wait_ready(Duration::from_secs(15)).await
        && let Ok(ch) = broker.open_channel().await
    {
        let _ = topology.delete(&ch).await;
    }
    stop.cancel();
}
