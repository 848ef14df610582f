//! Shared setup: the binary with a clean environment, a serving role started on port 0 and
//! waited on until ready, a Redis prefix per test (removed on drop, even after a panic), a
//! run's exchanges and queues removed, and temporary files. Polling and the services' URLs
//! come from `wa_testkit`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use secrecy::SecretString;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use wa_ids::WabaId;
use wa_store::{Install, RedisConfig, Store, TokenKey, TokenVault};

/// The binary under test, built by Cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_wa-onboard");

/// How long one run of the binary may take before the test fails (an unreachable Redis is
/// reported after about 2.5 s).
const RUN_DEADLINE: Duration = Duration::from_secs(30);

pub use wa_testkit::{Listening, amqp_url, eventually, redis_cluster_urls, redis_url};

/// `wa-onboard` with an environment holding only `PATH` and `RUST_LOG`: a `WA_*` variable
/// from the developer's shell must not change what a test sees.
pub fn wa_onboard() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// How long a serving role may take to log the address it bound.
const LISTEN_DEADLINE: Duration = Duration::from_secs(30);

/// Starts a serving role (`cmd` from [`wa_onboard`], its listen address `127.0.0.1:0`) and
/// returns once it logged where it listens. Its log is read at `info` (it holds the address)
/// and kept for failure messages; with `TEST_LOG` set it is shown too.
pub async fn serving(mut cmd: Command) -> Listening {
    cmd.env("RUST_LOG", "info");
    Listening::spawn(cmd, LISTEN_DEADLINE).await
}

/// How long a serving role may take to answer `/readyz`, or to stop after SIGTERM.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running role of the binary (started on port 0), killed on drop if the test fails
/// half-way.
pub struct Role {
    name: &'static str,
    process: Listening,
}

impl Role {
    /// Starts `cmd`, its listen address `127.0.0.1:0`, and returns once it logged the address
    /// it bound.
    pub async fn start(name: &'static str, cmd: Command) -> Self {
        Self {
            name,
            process: serving(cmd).await,
        }
    }

    /// `http://` and the address it reported.
    pub fn base(&self) -> String {
        self.process.base()
    }

    /// Waits until `path` answers 200, failing if the process exits.
    pub async fn wait_for(&mut self, http: &reqwest::Client, path: &str) {
        let url = format!("{}{path}", self.base());
        let what = format!("wa-onboard {} answering 200 on {url}", self.name);
        let process = &mut self.process;
        eventually(START_DEADLINE, &what, || {
            process.assert_running();
            let request = http.get(&url).send();
            async move { request.await.ok().filter(|r| r.status() == 200).map(drop) }
        })
        .await;
    }

    /// Waits until `/readyz` answers 200 (a live broker channel), failing if the process exits.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        self.wait_for(http, "/readyz").await;
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self, http: &reqwest::Client) -> String {
        let reply = http
            .get(format!("{}/metrics", self.base()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("scrape wa-onboard {}: {e}", self.name));
        assert_eq!(reply.status(), 200, "wa-onboard {} /metrics", self.name);
        reply.text().await.expect("metrics text")
    }

    /// SIGTERM, then waits; killed on drop if it does not stop within the deadline.
    pub async fn stop(mut self) {
        self.process.terminate(START_DEADLINE).await;
    }
}

/// `wa-onboard ingress` on port 0, publishing to `amqp_url` under `prefix`.
pub fn ingress_cmd(app_secret: &str, amqp_url: &str, prefix: &str) -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("ingress")
        .env("WA_LISTEN", "127.0.0.1:0")
        .env("WA_APP_SECRET", app_secret)
        .env("WA_VERIFY_TOKEN", "it-verify-token")
        .env("AMQP_URL", amqp_url)
        .env("WA_AMQP_PREFIX", prefix);
    cmd
}

/// `wa-onboard worker` (metrics on port 0) consuming from `amqp_url` under `prefix`, writing
/// to `tenants`, calling the Graph API at `graph_base`, with one delay tier of `retry_delay`.
pub fn worker_cmd(
    app_secret: &str,
    tenants: &TestTenants,
    graph_base: &str,
    amqp_url: &str,
    prefix: &str,
    retry_delay: Duration,
) -> Command {
    let mut cmd = wa_onboard();
    cmd.arg("worker")
        .env("WA_METRICS_LISTEN", "127.0.0.1:0")
        .env("WA_APP_SECRET", app_secret)
        .env("WA_SYSTEM_USER_ID", "61550000000001")
        .env("WA_APP_ID", "1061231232323117")
        .env("WA_SYSTEM_USER_TOKEN", "it-system-user-token")
        .env("WA_TOKEN_KEY", &tenants.key_base64)
        .env("WA_GRAPH_BASE", graph_base)
        .env(
            "WA_RETRY_DELAYS",
            humantime::format_duration(retry_delay).to_string(),
        )
        .env("AMQP_URL", amqp_url)
        .env("WA_AMQP_PREFIX", prefix)
        .env("REDIS_URL", redis_url())
        .env("WA_REDIS_PREFIX", &tenants.prefix);
    cmd
}

/// tests/fixtures/partner_app_installed.json: WABA 495709166956424 of business
/// 942647313864044.
pub fn install_fixture() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/partner_app_installed.json"),
    )
    .expect("read the install fixture")
}

/// POSTs `body` to `url` signed with `app_secret` as Meta signs it.
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    app_secret: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    http.post(url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            wa_envelope::sign(app_secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("POST the signed webhook")
}

/// Removes `topology`'s exchanges and queues from the broker at `amqp_url` (deleting a queue
/// that does not exist is not an error in RabbitMQ).
pub async fn delete_topology(amqp_url: &str, topology: wa_broker::Topology) {
    let Ok(config) = wa_broker::BrokerConfig::new(amqp_url, topology.clone()) else {
        return;
    };
    let stop = CancellationToken::new();
    let broker = wa_broker::Broker::start(config, stop.clone());
    if broker.wait_ready(Duration::from_secs(10)).await
        && let Ok(ch) = broker.open_channel().await
    {
        let _ = topology.delete(&ch).await;
    }
    stop.cancel();
}

/// What a finished run printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, failing the test after [`RUN_DEADLINE`] (the child is killed).
pub async fn run(cmd: &mut Command) -> Output {
    let out = tokio::time::timeout(RUN_DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("wa-onboard did not finish within {RUN_DEADLINE:?}"))
        .expect("spawn wa-onboard");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A tenant store under its own random prefix, with its own random token key; every key
/// under the prefix is deleted when it is dropped.
pub struct TestTenants {
    pub store: Store,
    /// The store's tokens, under the key of `key_base64`.
    pub vault: TokenVault,
    pub prefix: String,
    /// The token key as `WA_TOKEN_KEY` takes it.
    pub key_base64: String,
    /// `REDIS_URL` of the store (the cluster's nodes, comma-separated, for a cluster).
    pub url: String,
}

impl TestTenants {
    pub async fn new() -> Self {
        Self::on(redis_url()).await
    }

    /// A store on the Redis Cluster of scripts/redis-cluster.sh.
    pub async fn cluster() -> Self {
        Self::on(redis_cluster_urls()).await
    }

    async fn on(url: String) -> Self {
        let key = rand::random::<[u8; 32]>();
        let prefix = format!("wa-cli-test:{:016x}:", rand::random::<u64>());
        let config = RedisConfig::parse(&url, false).expect("a Redis URL");
        let store = Store::open(&config, &prefix).await.unwrap_or_else(|e| {
            panic!("Redis must be running at {url} (scripts/services.sh): {e}")
        });
        let vault = store.with_token_key(TokenKey::from_bytes(&key).expect("32 bytes"));
        Self {
            store,
            vault,
            prefix,
            key_base64: STANDARD.encode(key),
            url,
        }
    }

    /// `wa-onboard tenants ARGS` pointed at this store through the environment.
    pub fn tenants(&self, args: &[&str]) -> Command {
        let mut cmd = wa_onboard();
        cmd.arg("tenants")
            .args(args)
            .env("REDIS_URL", &self.url)
            .env("WA_REDIS_PREFIX", &self.prefix)
            .env("WA_TOKEN_KEY", &self.key_base64);
        cmd
    }

    /// Applies an install of `waba_id`, as the worker would.
    pub async fn install(&self, ev: &Install) {
        let applied = self.store.apply_install(ev).await.expect("apply_install");
        assert!(!applied.stale, "arranged install was ignored: {applied:?}");
    }

    /// Stores `token` as the business token of installed tenant `waba_id`, as the worker
    /// would for the install at `install_time` (its event time: the install in effect).
    pub async fn store_token(
        &self,
        waba_id: &str,
        token: &str,
        fetched_at: i64,
        install_time: i64,
    ) {
        let stored = self
            .vault
            .store_token(
                &waba(waba_id),
                &SecretString::from(token.to_owned()),
                fetched_at,
                install_time,
            )
            .await
            .expect("store_token");
        assert!(
            stored,
            "token not stored: tenant {waba_id} is not installed by the install at {install_time}"
        );
    }
}

impl Drop for TestTenants {
    fn drop(&mut self) {
        // Synchronous on purpose: runs even when the test panicked.
        wa_testkit::forget_redis_prefix(&self.url, &self.prefix);
    }
}

/// An install event as the worker hands it to the store.
pub fn install(waba_id: &str, owner: &str, event_time: i64) -> Install {
    Install {
        waba_id: waba(waba_id),
        owner_business_id: owner.parse().expect("a business id"),
        partner_app_id: Some("1061231232323117".parse().expect("an app id")),
        solution_id: None,
        solution_partner_business_ids: Vec::new(),
        event_time,
    }
}

/// `id` as a WABA id.
pub fn waba(id: &str) -> WabaId {
    id.parse().expect("a WABA id")
}

/// A file under the temporary directory, removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(contents: impl AsRef<[u8]>) -> Self {
        let path = std::env::temp_dir().join(format!(
            "wa-onboard-it-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&path, contents).expect("write temp file");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
