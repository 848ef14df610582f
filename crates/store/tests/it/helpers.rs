//! Shared setup: a store on its own random prefix (removed on drop, even after a panic),
//! raw access to its keys, and a type-aware dump of everything under the prefix.

use redis::aio::MultiplexedConnection;
use wa_ids::{AppId, BusinessId, DedupeKey, PhoneNumberId, SessionId, WabaId};
use wa_store::{Install, RedisConfig, Store, TenantRecord, TokenKey, TokenVault, Uninstall};

pub use wa_testkit::{eventually, redis_cluster_urls, redis_url};

pub fn test_key() -> TokenKey {
    TokenKey::from_bytes(&rand::random::<[u8; 32]>()).unwrap()
}

/// A store under its own random prefix; its keys are deleted when it is dropped.
pub struct TestStore {
    pub store: Store,
    /// The store's tokens, under `key`.
    pub vault: TokenVault,
    pub prefix: String,
    pub key: TokenKey,
    /// The Redis (or the cluster's nodes, comma-separated) the keys are on.
    url: String,
}

impl TestStore {
    pub async fn new() -> Self {
        Self::with_key(test_key()).await
    }

    pub async fn with_key(key: TokenKey) -> Self {
        let config = RedisConfig::parse(&redis_url(), false).unwrap();
        Self::on(config, redis_url(), key).await
    }

    /// A store on the Redis Cluster of scripts/redis-cluster.sh (3 masters, 3 replicas), as
    /// the seeds `redis_cluster_urls()` make it.
    pub async fn cluster() -> Self {
        let config = RedisConfig::parse(&redis_cluster_urls(), true).unwrap();
        Self::on(config, redis_cluster_urls(), test_key()).await
    }

    pub async fn on(config: RedisConfig, url: String, key: TokenKey) -> Self {
        let prefix = format!("watest:{:016x}:", rand::random::<u64>());
        let store = Store::open(&config, &prefix).await.unwrap_or_else(|e| {
            panic!("Redis must be running at {url} (scripts/services.sh): {e}")
        });
        let vault = store.with_token_key(key.clone());
        Self {
            store,
            vault,
            prefix,
            key,
            url,
        }
    }

    /// The tokens of another store on the same prefix (another worker process), possibly
    /// with another key.
    pub async fn sibling(&self, key: TokenKey) -> TokenVault {
        Store::connect(&redis_url(), &self.prefix)
            .await
            .unwrap()
            .with_token_key(key)
    }

    /// The record of tenant `waba`, which must exist.
    pub async fn record(&self, waba: &str) -> TenantRecord {
        self.store
            .get(&waba_id(waba))
            .await
            .expect("read the tenant")
            .unwrap_or_else(|| panic!("tenant {waba} does not exist"))
    }

    /// A plain connection, to look at and tamper with the raw keys.
    pub async fn raw(&self) -> MultiplexedConnection {
        redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every key under the prefix, sorted (found with SCAN).
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.raw().await;
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(page);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every key under the prefix with everything it holds, read according to its type.
    pub async fn dump(&self) -> String {
        let mut conn = self.raw().await;
        let mut out = String::new();
        for key in self.keys().await {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap(),
                ],
                "hash" => redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
                "set" => redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
                "list" => redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
                other => panic!("unexpected type {other} at {key}"),
            };
            out.push_str(&format!("{key} ({kind}):"));
            for v in values {
                out.push(' ');
                out.push_str(&String::from_utf8_lossy(&v));
            }
            out.push('\n');
        }
        out
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // Synchronous on purpose: runs even when the test panicked.
        wa_testkit::forget_redis_prefix(&self.url, &self.prefix);
    }
}

pub fn waba_id(id: &str) -> WabaId {
    WabaId::parse(id).unwrap()
}

pub fn business_id(id: &str) -> BusinessId {
    BusinessId::parse(id).unwrap()
}

pub fn phone_id(id: &str) -> PhoneNumberId {
    PhoneNumberId::parse(id).unwrap()
}

pub fn session_id(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

/// A dedupe key made from a short name (its SHA-256 shape, the name's bytes in hex, padded).
pub fn dedupe_key(name: &str) -> DedupeKey {
    let mut hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(hex.len() <= 64, "name too long for a dedupe key: {name}");
    hex.extend(std::iter::repeat_n('0', 64 - hex.len()));
    DedupeKey::parse(&hex).unwrap()
}

pub fn install(waba: &str, owner: &str, event_time: i64) -> Install {
    Install {
        waba_id: waba_id(waba),
        owner_business_id: business_id(owner),
        partner_app_id: Some(AppId::parse("1061231232323117").unwrap()),
        solution_id: None,
        solution_partner_business_ids: Vec::new(),
        event_time,
    }
}

pub fn uninstall(waba: &str, event_time: i64) -> Uninstall {
    Uninstall {
        waba_id: waba_id(waba),
        owner_business_id: None,
        event_time,
    }
}

pub fn secret(s: &str) -> secrecy::SecretString {
    secrecy::SecretString::from(s.to_owned())
}
