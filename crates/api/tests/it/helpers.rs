//! `spawn_api`: the real API on port 0 over its own Redis prefix (removed on drop, even
//! after a panic), two callers, and every log line of the test binary captured as JSON so a
//! test can look for its audit lines (each test filters by its own WABA ids).

use std::{
    io::Write,
    sync::{Mutex, Once},
    time::Duration,
};

use secrecy::SecretString;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use wa_api::{ApiConfig, Callers};
use wa_ids::{AppId, BusinessId, WabaId};
use wa_store::{Install, Store, TokenKey, TokenVault, Uninstall};
pub use wa_testkit::redis_url;

pub const BILLING: &str = "billing-token-0123456789abcdef";
pub const CRM: &str = "crm-token-0123456789abcdef0123";

/// Every log line of this test binary.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| Capture)
            .init();
    });
}

/// The captured log lines that contain `needle`, parsed.
pub fn log_lines(needle: &str) -> Vec<serde_json::Value> {
    let log = LOG.lock().unwrap();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| serde_json::from_str(l).expect("log lines are JSON"))
        .collect()
}

/// The whole captured log.
pub fn whole_log() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

pub struct TestApi {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub vault: TokenVault,
    pub prefix: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), wa_api::ApiError>>>,
}

pub async fn spawn_api() -> TestApi {
    capture_logs();
    let prefix = format!("waapitest:{:016x}:", rand::random::<u64>());
    let store = Store::connect(&redis_url(), &prefix)
        .await
        .expect("Redis must be running (REDIS_URL or redis://127.0.0.1:6379/0)");
    let key = TokenKey::from_bytes(&rand::random::<[u8; 32]>()).unwrap();
    let vault = store.with_token_key(key);
    let callers = Callers::parse(&format!("billing:{BILLING},crm:{CRM}")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(wa_api::run(
        listener,
        ApiConfig::new(callers, vault.clone()),
        shutdown.clone(),
    ));
    TestApi {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
        vault,
        prefix,
        shutdown,
        server: Some(server),
    }
}

impl TestApi {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    /// `GET path` as the `crm` caller.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(CRM, path).await
    }

    /// `GET path` as `crm`: the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "application/json", "{path}");
        (status, r.json().await.expect("JSON body"))
    }

    /// Installs `waba` (owner `owner`) at `time`.
    pub async fn install(&self, waba: &str, time: i64) {
        self.store
            .apply_install(&Install {
                waba_id: WabaId::parse(waba).unwrap(),
                owner_business_id: BusinessId::parse("942647313864044").unwrap(),
                partner_app_id: Some(AppId::parse("1061231232323117").unwrap()),
                solution_id: None,
                solution_partner_business_ids: Vec::new(),
                event_time: time,
            })
            .await
            .unwrap();
    }

    /// Installs `waba` at `time` and stores `token` for it.
    pub async fn install_with_token(&self, waba: &str, time: i64, token: &str) {
        self.install(waba, time).await;
        let stored = self
            .vault
            .store_token(
                &WabaId::parse(waba).unwrap(),
                &SecretString::from(token.to_owned()),
                time + 1,
                time,
            )
            .await
            .unwrap();
        assert!(stored);
    }

    pub async fn uninstall(&self, waba: &str, time: i64) {
        self.store
            .apply_uninstall(&Uninstall {
                waba_id: WabaId::parse(waba).unwrap(),
                owner_business_id: None,
                event_time: time,
            })
            .await
            .unwrap();
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("api stops after shutdown")
                .expect("api task")
                .expect("api result");
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
        wa_testkit::forget_redis_prefix(&redis_url(), &self.prefix);
    }
}
