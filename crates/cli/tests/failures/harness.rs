//! The stack under test (graph-sim, ingress, workers as child processes of the real binary),
//! a stream of signed installs with the answer each one got, and the end-of-test checks:
//! every acknowledged install applied, one token fetch per business, nothing in the DLQ.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    process::Stdio,
    time::{Duration, Instant, SystemTime},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::{
    process::{Child, Command},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use wa_broker::lapin::{options::QueueDeclareOptions, types::FieldTable};
use wa_ids::WabaId;
use wa_store::{Status, Store, TokenKey, TokenStatus, TokenVault};

/// The binary under test, built by Cargo for this test run.
const BIN: &str = env!("CARGO_BIN_EXE_wa-onboard");
const APP_SECRET: &str = "failure-test-app-secret";
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
/// How long a role may take to answer `/readyz`.
const START_DEADLINE: Duration = Duration::from_secs(20);

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// `host:port` of the Redis at [`redis_url`], for a proxy in front of it.
pub fn redis_addr() -> String {
    let url = redis_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// A port nobody listens on right now (the OS picks it; the child binds it again).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").to_string()
}

/// Polls `check` until it returns `Some`, failing the test after `within`.
pub use wa_testkit::eventually;

/// Prints a test's figures as one `RELIABILITY:` line (quoted by docs/RELIABILITY.md; run
/// with `--nocapture` to see it when the test passes).
#[allow(clippy::print_stdout, reason = "the figures are the test's report")]
pub fn report(figures: &str) {
    println!("RELIABILITY: {figures}");
}

/// `wa-onboard ROLE` with only `PATH` and `RUST_LOG` from the environment, killed on drop.
fn wa_onboard(role: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    // Their expected warnings and errors (refused publishes, connections reset by the
    // stopped broker, failing Graph calls) stay out of the test output unless TEST_LOG is set.
    let level = if std::env::var_os("TEST_LOG").is_some() {
        "info"
    } else {
        "error,lapin=off"
    };
    cmd.arg(role)
        .env("RUST_LOG", level)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd
}

/// A running role: the child process and the base URL of its HTTP listener.
pub struct Role {
    pub name: String,
    pub child: Child,
    pub base: String,
}

impl Role {
    fn spawn(name: String, mut cmd: Command, listen: &str) -> Self {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn wa-onboard {name}: {e}"));
        Self {
            name,
            child,
            base: format!("http://{listen}"),
        }
    }

    /// Whether `path` answers 200 right now.
    pub async fn answers(&self, http: &reqwest::Client, path: &str) -> bool {
        http.get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    /// Waits until `path` answers 200, failing if the process exits first.
    pub async fn wait_for(&mut self, http: &reqwest::Client, path: &str, within: Duration) {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("wa-onboard {} exited early with {status}", self.name);
            }
            if self.answers(http, path).await {
                return;
            }
            assert!(
                Instant::now() < until,
                "wa-onboard {} {path}: not 200 within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and reaps the process.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Where the workers reach Redis (a test may put a proxy in between).
pub struct Options {
    pub workers: usize,
    pub worker_redis_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            worker_redis_url: redis_url(),
        }
    }
}

/// graph-sim, one ingress and `workers` workers under a fresh queue prefix and Redis prefix.
pub struct Stack {
    pub http: reqwest::Client,
    pub amqp_prefix: String,
    pub redis_prefix: String,
    key_base64: String,
    worker_redis_url: String,
    /// The test's own view of the tenants (same prefix and key as the workers).
    pub store: Store,
    /// The store's tokens.
    pub vault: TokenVault,
    pub graph: Role,
    /// graph-sim's log (removed on drop).
    graph_log: std::path::PathBuf,
    pub ingress: Role,
    pub workers: Vec<Role>,
    /// Digits that make this run's WABA and business ids unique.
    run: u32,
}

impl Stack {
    pub async fn start(options: Options) -> Self {
        let key = rand::random::<[u8; 32]>();
        let redis_prefix = format!("wa-failures:{:016x}:", rand::random::<u64>());
        let store = Store::connect(&redis_url(), &redis_prefix)
            .await
            .expect("Redis must be running (REDIS_URL or redis://127.0.0.1:6379/0)");
        let vault = store.with_token_key(TokenKey::from_bytes(&key).expect("32 bytes"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("http client");

        let graph_listen = free_addr();
        // graph-sim logs each request's path (with the business id) and status as a JSON
        // line on stderr: the per-business record of token fetches.
        let graph_log = std::env::temp_dir().join(format!(
            "wa-failures-graph-sim-{}-{:016x}.log",
            std::process::id(),
            rand::random::<u64>()
        ));
        let log_file = std::fs::File::create(&graph_log).expect("create graph-sim log");
        let mut cmd = wa_onboard("graph-sim");
        cmd.env("WA_GRAPH_SIM_LISTEN", &graph_listen)
            .env("WA_APP_SECRET", APP_SECRET)
            .env("RUST_LOG", "info")
            .stderr(Stdio::from(log_file));
        let graph = Role::spawn("graph-sim".into(), cmd, &graph_listen);

        let amqp_prefix = format!("wa-failures-{:016x}", rand::random::<u64>());
        let ingress_listen = free_addr();
        let mut cmd = wa_onboard("ingress");
        cmd.env("WA_LISTEN", &ingress_listen)
            .env("WA_APP_SECRET", APP_SECRET)
            .env("WA_VERIFY_TOKEN", "failure-test-verify-token")
            .env("AMQP_URL", amqp_url())
            .env("WA_AMQP_PREFIX", &amqp_prefix);
        let ingress = Role::spawn("ingress".into(), cmd, &ingress_listen);

        let mut stack = Self {
            http,
            amqp_prefix,
            redis_prefix,
            key_base64: STANDARD.encode(key),
            worker_redis_url: options.worker_redis_url,
            store,
            vault,
            graph,
            graph_log,
            ingress,
            workers: Vec::new(),
            run: rand::random_range(10_000_000..100_000_000),
        };
        for i in 0..options.workers {
            let worker = stack.spawn_worker(i);
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

    fn spawn_worker(&self, i: usize) -> Role {
        let listen = free_addr();
        let delays: Vec<String> = RETRY_DELAYS
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        let mut cmd = wa_onboard("worker");
        cmd.env("WA_METRICS_LISTEN", &listen)
            .env("WA_APP_SECRET", APP_SECRET)
            .env("WA_SYSTEM_USER_ID", "61550000000001")
            .env("WA_SYSTEM_USER_TOKEN", "failure-test-system-user-token")
            .env("WA_TOKEN_KEY", &self.key_base64)
            .env("WA_GRAPH_BASE", &self.graph.base)
            .env("WA_RETRY_DELAYS", delays.join(","))
            .env("WA_CLAIM_LEASE", CLAIM_LEASE)
            .env("AMQP_URL", amqp_url())
            .env("WA_AMQP_PREFIX", &self.amqp_prefix)
            .env("REDIS_URL", &self.worker_redis_url)
            .env("WA_REDIS_PREFIX", &self.redis_prefix);
        Role::spawn(format!("worker-{i}"), cmd, &listen)
    }

    /// Replaces worker `i` (already killed) with a fresh process, ready.
    pub async fn restart_worker(&mut self, i: usize) {
        let mut worker = self.spawn_worker(i);
        worker.wait_for(&self.http, "/readyz", START_DEADLINE).await;
        self.workers[i] = worker;
    }

    /// The WABA id of install `index` of this run (its owner business id is [`Self::owner`]).
    pub fn waba(&self, index: u32) -> String {
        waba_id(self.run, index)
    }

    pub fn owner(&self, index: u32) -> String {
        owner_id(self.run, index)
    }

    /// Streams one signed install after another (a new WABA and business each time, at most
    /// one every `every`) until [`InstallStream::stop`].
    pub fn stream_installs(&self, every: Duration) -> InstallStream {
        let stop = CancellationToken::new();
        let http = self.http.clone();
        let url = format!("{}/webhooks/whatsapp", self.ingress.base);
        let run = self.run;
        let stop2 = stop.clone();
        let task = tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Indexes from 0; the tests keep 40 000 and above for their own probes.
            for index in 0..40_000u32 {
                tokio::select! {
                    () = stop2.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let (waba, owner) = (waba_id(run, index), owner_id(run, index));
                let status = post_install(&http, &url, &waba, &owner).await;
                sent.push(Answer {
                    waba,
                    status,
                    at: Instant::now(),
                });
            }
            sent
        });
        InstallStream { stop, task }
    }

    /// Posts one signed install for `index`; its HTTP status (`None`: no answer).
    pub async fn send_install(&self, index: u32) -> Option<u16> {
        let url = format!("{}/webhooks/whatsapp", self.ingress.base);
        post_install(&self.http, &url, &self.waba(index), &self.owner(index)).await
    }

    /// graph-sim's `/_sim/calls` answer.
    pub async fn graph_calls(&self) -> Value {
        self.http
            .get(format!("{}/_sim/calls", self.graph.base))
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
            .post(format!("{}/_sim/mode", self.graph.base))
            .json(&mode)
            .send()
            .await
            .expect("POST /_sim/mode");
        assert_eq!(reply.status(), 200, "POST /_sim/mode {mode}");
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
            .get(format!("{}/metrics", role.base))
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

    /// Posts installs `from..from + n` all at once; the WABAs answered 200.
    pub async fn burst(&self, from: u32, n: u32) -> Vec<String> {
        let sends = (from..from + n).map(|i| async move {
            (self.send_install(i).await == Some(200)).then(|| self.waba(i))
        });
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Token fetches graph-sim answered with a token, by business id: when each arrived.
    fn fetches_by_business(&self) -> BTreeMap<String, Vec<SystemTime>> {
        let text = std::fs::read_to_string(&self.graph_log).expect("read graph-sim log");
        let mut fetches: BTreeMap<String, Vec<SystemTime>> = BTreeMap::new();
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let fields = &entry["fields"];
            if fields["message"] != "graph-sim request" || fields["status"] != 200 {
                continue;
            }
            let Some(path) = fields["path"].as_str() else {
                continue;
            };
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            if let [_, business, "system_user_access_tokens"] = segments.as_slice() {
                let at = entry["timestamp"]
                    .as_str()
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                    .expect("graph-sim log timestamp");
                fetches.entry((*business).to_owned()).or_default().push(at);
            }
        }
        for times in fetches.values_mut() {
            times.sort();
        }
        fetches
    }

    fn topology(&self) -> wa_broker::Topology {
        let mut topology = wa_broker::Topology::new(self.amqp_prefix.clone());
        topology.retry_delays = RETRY_DELAYS.to_vec();
        topology
    }

    /// Ready messages in each queue of this run's topology (unacknowledged ones not
    /// included), by queue name.
    pub async fn queue_depths(&self) -> Vec<(String, u32)> {
        let topology = self.topology();
        let queues = topology.queues();
        let stop = CancellationToken::new();
        let config = wa_broker::BrokerConfig::new(&amqp_url(), topology).expect("AMQP_URL");
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

    /// Waits until every WABA in `acked` is installed with an active token and subscribed,
    /// then until the run is quiet (no ready message in any work or delay queue, no message
    /// in progress, graph-sim's counters still), and returns what the tenants and graph-sim
    /// say. Panics with the WABAs still missing after `within`.
    pub async fn settle(&self, acked: &BTreeSet<String>, within: Duration) -> Settled {
        let until = Instant::now() + within;
        let mut pending: BTreeSet<String> = acked.clone();
        while !pending.is_empty() {
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
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= until {
                let mut report = String::new();
                for waba in pending.iter().take(10) {
                    let _ = writeln!(
                        report,
                        "  {waba}: {:?}",
                        self.store.get(&waba_id_of(waba)).await
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
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Quiet: whatever the ingress published without a 200 (a confirm lost with the
        // broker) is processed too before counting.
        let dlq = self.topology().account_update_dlq();
        let mut last: Option<Value> = None;
        loop {
            let calls = self.graph_calls().await;
            let busy = self
                .queue_depths()
                .await
                .iter()
                .any(|(q, n)| *q != dlq && *n > 0)
                || self.worker_metric("wa_worker_in_flight").await > 0.0;
            if !busy && last.as_ref() == Some(&calls) {
                break;
            }
            assert!(
                Instant::now() < until,
                "the run did not go quiet within {within:?}: queues {:?}",
                self.queue_depths().await
            );
            last = Some(calls);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.figures(acked).await
    }

    /// What the tenants and graph-sim say now.
    async fn figures(&self, acked: &BTreeSet<String>) -> Settled {
        let mut tenants = 0;
        let mut active = 0;
        let mut inconsistent = Vec::new();
        let mut list = self.store.list();
        while let Some(t) = list.next().await {
            let t = t.expect("list tenants");
            tenants += 1;
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
        for waba in acked {
            let token = self
                .vault
                .token(&waba_id_of(waba))
                .await
                .expect("read token");
            let expected_owner = format!("2{}", &waba[1..]);
            let ok = token.is_some_and(|t| {
                secrecy::ExposeSecret::expose_secret(&t)
                    .starts_with(&format!("sim-{expected_owner}-"))
            });
            if !ok {
                inconsistent.push(format!("{waba}: stored token is not its business's"));
            }
        }
        let calls = self.graph_calls().await;
        let count = |name: &str| calls["calls"][name].as_u64().unwrap_or(0);
        // Every failure graph-sim gives in these tests answers a token call (a subscription
        // comes only after a fetched token), so the rest are the fetches that succeeded.
        let token_fetches = count("system_user_access_tokens").saturating_sub(
            count("failed_transient") + count("failed_permanent") + count("rejected"),
        );
        let subscriptions = count("subscribed_apps");
        // The log is written as requests are answered: wait until it holds every fetch.
        let by_business = eventually(Duration::from_secs(5), "graph-sim log complete", || {
            let fetches = self.fetches_by_business();
            let logged: usize = fetches.values().map(Vec::len).sum();
            std::future::ready((logged as u64 == token_fetches).then_some(fetches))
        })
        .await;
        let refetched: Vec<(String, Vec<SystemTime>)> = by_business
            .into_iter()
            .filter(|(_, times)| times.len() > 1)
            .collect();
        let dlq = self.topology().account_update_dlq();
        let dead_letters = self
            .queue_depths()
            .await
            .into_iter()
            .find(|(q, _)| *q == dlq)
            .map_or(0, |(_, n)| n);
        Settled {
            tenants,
            active,
            inconsistent,
            token_fetches,
            refetched,
            subscriptions,
            failed_graph_calls: count("failed_transient"),
            dead_letters,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Synchronous on purpose, so it runs after a panic too: the children are killed
        // (kill_on_drop), then the queues, exchanges and keys of this run are removed from a
        // thread with its own runtime.
        for role in self
            .workers
            .iter_mut()
            .chain([&mut self.ingress, &mut self.graph])
        {
            let _ = role.child.start_kill();
        }
        let _ = std::fs::remove_file(&self.graph_log);
        let topology = self.topology();
        let prefix = self.redis_prefix.clone();
        let cleanup = std::thread::spawn(move || {
            delete_redis_prefix(&prefix);
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(delete_topology(topology));
        });
        let _ = cleanup.join();
    }
}

fn delete_redis_prefix(prefix: &str) {
    wa_testkit::forget_redis_prefix(&redis_url(), prefix);
}

async fn delete_topology(topology: wa_broker::Topology) {
    let Ok(config) = wa_broker::BrokerConfig::new(&amqp_url(), topology.clone()) else {
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

/// WABA `index` of run `run`: `1`, the run's 8 digits, the index's 5.
fn waba_id(run: u32, index: u32) -> String {
    format!("1{run}{index:05}")
}

/// The business owning [`waba_id`]: the same digits after a `2`.
fn owner_id(run: u32, index: u32) -> String {
    format!("2{run}{index:05}")
}

/// One signed install as Meta sends it: a batch of one change, `waba_info` complete.
async fn post_install(http: &reqwest::Client, url: &str, waba: &str, owner: &str) -> Option<u16> {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": owner,
            "time": time,
            "changes": [{
                "field": "account_update",
                "value": {
                    "event": "PARTNER_APP_INSTALLED",
                    "waba_info": {
                        "waba_id": waba,
                        "owner_business_id": owner,
                        "partner_app_id": "1061231232323117",
                    },
                },
            }],
        }],
    });
    let body = serde_json::to_vec(&body).expect("JSON");
    http.post(url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            wa_envelope::sign(APP_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// One install sent by an [`InstallStream`] and the answer it got.
pub struct Answer {
    pub waba: String,
    /// `None`: no HTTP answer (connection refused or reset, timeout).
    pub status: Option<u16>,
    /// When the answer came.
    pub at: Instant,
}

/// A running stream of installs.
pub struct InstallStream {
    stop: CancellationToken,
    task: JoinHandle<Vec<Answer>>,
}

impl InstallStream {
    /// Stops sending and returns every install sent, in order.
    pub async fn stop(self) -> Sent {
        self.stop.cancel();
        Sent(self.task.await.expect("install stream task"))
    }
}

/// What an [`InstallStream`] sent.
pub struct Sent(pub Vec<Answer>);

impl Sent {
    /// The WABAs whose webhook was answered 200.
    pub fn acked(&self) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|s| s.status == Some(200))
            .map(|s| s.waba.clone())
            .collect()
    }

    /// How many got an answer other than 200, or none.
    pub fn refused(&self) -> usize {
        self.0.iter().filter(|s| s.status != Some(200)).count()
    }

    /// Statuses other than 200, 503 and no answer (none is expected).
    pub fn unexpected(&self) -> Vec<Option<u16>> {
        self.0
            .iter()
            .map(|s| s.status)
            .filter(|s| !matches!(s, Some(200 | 503) | None))
            .collect()
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

/// How long after a fault a request sent before it may still reach graph-sim.
const IN_FLIGHT_SLACK: Duration = Duration::from_secs(1);

impl Settled {
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
            "a token fetched for a business with no active tenant, or graph-sim's log incomplete"
        );
    }
}

/// `waba` (as [`waba_id`] makes them) as a typed WABA id.
fn waba_id_of(waba: &str) -> WabaId {
    WabaId::parse(waba).expect("a WABA id")
}
