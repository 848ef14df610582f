//! Shared setup: the binary with a clean environment, a serving role started on port 0, a
//! Redis prefix per test (removed on drop, even after a panic), and temporary files. Polling
//! and the services' URLs come from `wa_testkit`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use secrecy::SecretString;
use tokio::process::Command;
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
