//! What every test module shares.

use std::{path::PathBuf, time::Duration};

use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use wa_graph::{GraphClient, GraphConfig, RetryPolicy};
pub use wa_ids::{BusinessId, SystemUserId, WabaId};

pub const APP_SECRET: &str = "test-app-secret-0123456789abcdef";
pub const SYSTEM_USER_ID: &str = "61550000000001";
pub const SYSTEM_USER_TOKEN: &str = "EAAsystemusertoken-0123456789";
pub const VERSION: &str = "v22.0";

/// `appsecret_proof` computed here, independently of the crate and of wa-envelope.
pub fn proof(secret: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Tiny delays so retry tests run fast; a budget roomy enough for slow CI.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_attempts: 4,
        max_total: Duration::from_secs(3),
    }
}

pub fn config(base: &str) -> GraphConfig {
    GraphConfig {
        base: base.to_owned(),
        version: VERSION.to_owned(),
        app_secret: SecretString::from(APP_SECRET),
        system_user_id: SystemUserId::parse(SYSTEM_USER_ID).unwrap(),
        system_user_token: SecretString::from(SYSTEM_USER_TOKEN),
        timeout: Duration::from_secs(5),
        retry: fast_retry(),
    }
}

pub fn client(base: &str) -> GraphClient {
    GraphClient::new(config(base)).expect("valid config")
}

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).expect("fixture is JSON")
}

/// Query parameters of a received request, in order.
pub fn query_pairs(req: &wiremock::Request) -> Vec<(String, String)> {
    req.url.query_pairs().into_owned().collect()
}

/// Every request the mock server received.
pub async fn received(server: &wiremock::MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

/// Asserts that `text` holds none of `secrets`.
pub fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{text:?} leaks {secret:?}");
    }
}

pub fn business(id: &str) -> BusinessId {
    BusinessId::parse(id).unwrap()
}

pub fn waba(id: &str) -> WabaId {
    WabaId::parse(id).unwrap()
}
