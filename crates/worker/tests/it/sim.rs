//! A graph-sim (strict mode, our app id) for the tenant check tests, with its switches and
//! call log, and a world of tenants installed against it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wa_graph::{GraphClient, GraphConfig, RetryPolicy, sim::SimConfig};
use wa_ids::SystemUserId;
use wa_store::{Install, TokenExpiry};
use wa_worker::WorkerConfig;

use crate::helpers::*;

pub struct Sim {
    pub base: String,
    stop: CancellationToken,
    http: reqwest::Client,
}

impl Sim {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        let config = SimConfig {
            system_user_token: Some(SecretString::from(SYSTEM_USER_TOKEN)),
            app_id: APP_ID.to_owned(),
            ..SimConfig::new(SecretString::from(APP_SECRET))
        };
        tokio::spawn(wa_graph::sim::serve(
            listener,
            config,
            stop.clone().cancelled_owned(),
        ));
        Self {
            base,
            stop,
            http: reqwest::Client::new(),
        }
    }

    /// A worker configuration of `env` talking to this simulator.
    pub fn worker_config(&self, env: &Env) -> WorkerConfig {
        let mut config = env.config();
        config.graph.base.clone_from(&self.base);
        config
    }

    /// A client of this simulator, as the worker's.
    pub fn client(&self) -> GraphClient {
        let mut graph = GraphConfig::new(
            SecretString::from(APP_SECRET),
            SystemUserId::parse(SYSTEM_USER_ID).unwrap(),
            SecretString::from(SYSTEM_USER_TOKEN),
        );
        graph.base.clone_from(&self.base);
        graph.retry = RetryPolicy::no_retry();
        GraphClient::new(graph).expect("graph")
    }

    pub async fn switch(&self, route: &str, body: Value) {
        let reply = self
            .http
            .post(format!("{}/_sim/{route}", self.base))
            .json(&body)
            .send()
            .await
            .expect("switch");
        assert_eq!(reply.status(), 204, "{route} {body}");
    }

    pub async fn token_state(&self, business: &str, state: &str) {
        self.switch("tokens", json!({"business_id": business, "state": state}))
            .await;
    }

    /// `GET /_sim/calls{query}`.
    async fn calls(&self, query: &str) -> Value {
        self.http
            .get(format!("{}/_sim/calls{query}", self.base))
            .send()
            .await
            .expect("calls")
            .json()
            .await
            .expect("json")
    }

    /// The Graph calls received on `route`, in order.
    pub async fn received(&self, route: &str) -> Vec<Value> {
        let calls = self.calls(&format!("?route={route}")).await;
        calls["received"].as_array().cloned().unwrap_or_default()
    }

    /// The per-endpoint counters of `GET /_sim/calls`.
    pub async fn counts(&self) -> Value {
        self.calls("").await["calls"].clone()
    }

    /// Installs `waba` (owned by `owner`) straight in the store, with the token the
    /// simulator issues for `owner` held, as an install would leave it (no phone numbers
    /// read yet). Returns the token.
    pub async fn seed(&self, env: &Env, waba: &str, owner: &str, time: i64) -> SecretString {
        let install = Install {
            waba_id: waba_id(waba),
            owner_business_id: business(owner),
            partner_app_id: Some(wa_ids::AppId::parse(APP_ID).unwrap()),
            solution_id: None,
            solution_partner_business_ids: Vec::new(),
            event_time: time,
        };
        env.store.apply_install(&install).await.expect("install");
        let token = self
            .client()
            .fetch_business_token(&business(owner))
            .await
            .expect("token");
        let expiry = TokenExpiry {
            expires_at: 0,
            checked_at: time,
        };
        let stored = env
            .vault
            .store_checked_token(&waba_id(waba), &token, time, time, Some(expiry))
            .await
            .expect("store");
        assert!(stored);
        env.store
            .mark_subscribed(&waba_id(waba), time)
            .await
            .expect("subscribed");
        token
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Queues a check of each of `wabas`, confirmed.
pub async fn queue(env: &Env, wabas: &[&str]) {
    let ids: Vec<_> = wabas.iter().map(|w| waba_id(w)).collect();
    wa_worker::reconcile::queue_checks(&env.broker, &ids, "requested", |_, _| {})
        .await
        .expect("queued");
}

/// Waits until worker `worker`'s `wa_worker_tenant_checks_total{outcome}` reaches `n`.
pub async fn wait_checks(env: &Env, worker: usize, outcome: &str, n: f64) {
    let prefix = format!("wa_worker_tenant_checks_total{{outcome=\"{outcome}\"}}");
    eventually(Duration::from_secs(15), &prefix, || async {
        (metric(&env.metrics(worker).await, &prefix) >= n).then_some(())
    })
    .await;
}

/// The token held for `waba`, as text.
pub async fn held(env: &Env, waba: &str) -> Option<String> {
    env.vault
        .token(&waba_id(waba))
        .await
        .expect("vault")
        .map(|t| t.expose_secret().to_owned())
}
