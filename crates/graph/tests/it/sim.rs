//! The simulator on 127.0.0.1:0 driven by the real `GraphClient`: success, failure modes,
//! switching them at run time, strict checks, admin routes, shutdown, and secret-free logs.

use std::{
    io,
    sync::{Arc, Mutex},
};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use wa_graph::{
    GraphClient, GraphError, parse_error,
    sim::{self, SimConfig},
};

use crate::helpers::*;

/// A running simulator and a plain HTTP client for its admin routes.
pub(crate) struct Sim {
    pub(crate) base: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Sim {
    /// Binds before serving, so requests queue in the backlog: no wait needed.
    pub(crate) async fn start(cfg: SimConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sim::serve(listener, cfg, async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            http: reqwest::Client::new(),
            stop,
            task,
        }
    }

    pub(crate) fn strict() -> SimConfig {
        SimConfig {
            app_secret: SecretString::from(APP_SECRET),
            system_user_token: Some(SecretString::from(SYSTEM_USER_TOKEN)),
            ..SimConfig::new(SecretString::from(APP_SECRET))
        }
    }

    fn client(&self) -> GraphClient {
        client(&self.base)
    }

    async fn calls(&self) -> Value {
        self.get("/_sim/calls").await["calls"].clone()
    }

    pub(crate) async fn get(&self, route: &str) -> Value {
        let reply = self
            .http
            .get(format!("{}{route}", self.base))
            .send()
            .await
            .expect("admin");
        assert_eq!(reply.status(), 200);
        reply.json().await.expect("json")
    }

    pub(crate) async fn set_mode(&self, mode: Value) -> Value {
        let reply = self
            .http
            .post(format!("{}/_sim/mode", self.base))
            .json(&mode)
            .send()
            .await
            .expect("admin");
        assert_eq!(reply.status(), 200);
        reply.json().await.expect("json")
    }

    /// A raw POST, returning status and the parsed error (for non-2xx) or body.
    pub(crate) async fn post(
        &self,
        route: &str,
        query: &[(&str, &str)],
    ) -> (u16, Value, GraphError) {
        let reply = self
            .http
            .post(format!("{}{route}", self.base))
            .query(query)
            .send()
            .await
            .expect("post");
        let status = reply.status().as_u16();
        let headers = reply.headers().clone();
        let body = reply.bytes().await.expect("body");
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json, parse_error(status, &headers, &body))
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("no panic").expect("clean shutdown");
    }
}

#[tokio::test]
async fn the_real_client_fetches_and_subscribes_against_the_simulator() {
    let sim = Sim::start(Sim::strict()).await;
    let graph = sim.client();

    let token = graph
        .fetch_business_token(&business("1234567"))
        .await
        .expect("token");
    let again = graph
        .fetch_business_token(&business("1234567"))
        .await
        .expect("token");
    graph
        .subscribe_app(&waba("7654321"), &token)
        .await
        .expect("subscribed");

    assert!(
        token.expose_secret().starts_with("sim-1234567-"),
        "sim-<business_id>-…"
    );
    assert_eq!(
        token.expose_secret(),
        again.expose_secret(),
        "fetch_only answers the same token"
    );
    let calls = sim.calls().await;
    assert_eq!(calls["system_user_access_tokens"], 2);
    assert_eq!(calls["subscribed_apps"], 1);
    assert_eq!(calls["ok"], 3);
    assert_eq!(calls["rejected"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_simulator_recovers() {
    let sim = Sim::start(SimConfig {
        fail_transient: 2,
        ..Sim::strict()
    })
    .await;

    sim.client()
        .fetch_business_token(&business("42"))
        .await
        .expect("recovered within the retry policy");

    let calls = sim.calls().await;
    assert_eq!(calls["system_user_access_tokens"], 3);
    assert_eq!(calls["failed_transient"], 2);
    sim.stop().await;
}

#[tokio::test]
async fn permanent_failure_until_the_operator_switches_the_mode() {
    let sim = Sim::start(SimConfig {
        fail_permanent: true,
        ..Sim::strict()
    })
    .await;
    let graph = sim.client();

    let err = graph
        .fetch_business_token(&business("42"))
        .await
        .expect_err("permanent");
    assert!(!err.is_transient());
    assert_eq!(err.code(), Some(190));
    assert_eq!(
        sim.calls().await["system_user_access_tokens"],
        1,
        "not retried"
    );

    let mode = sim.set_mode(json!({"fail_permanent": false})).await;
    assert_eq!(mode, json!({"fail_transient": 0, "fail_permanent": false}));
    graph
        .fetch_business_token(&business("42"))
        .await
        .expect("fixed");
    sim.stop().await;
}

#[tokio::test]
async fn transient_mode_set_at_run_time_outlasts_the_retry_budget() {
    let sim = Sim::start(Sim::strict()).await;
    let graph = sim.client();
    sim.set_mode(json!({"fail_transient": 10})).await;

    let err = graph
        .subscribe_app(&waba("9"), &SecretString::from("sim-1-x"))
        .await
        .expect_err("transient");

    assert!(err.is_transient());
    assert_eq!(err.code(), Some(2));
    assert!(
        err.summary().contains("fbtrace_id SIM"),
        "{}",
        err.summary()
    );
    assert_eq!(
        sim.get("/_sim/mode").await["fail_transient"],
        6,
        "four attempts used four failures"
    );
    let mode = sim.set_mode(json!({"fail_transient": 0})).await;
    assert_eq!(mode["fail_transient"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn strict_mode_rejects_wrong_tokens_and_proofs_like_meta() {
    let sim = Sim::start(Sim::strict()).await;

    let mut cfg = config(&sim.base);
    cfg.system_user_token = SecretString::from("EAAsomeoneelse");
    let err = GraphClient::new(cfg)
        .expect("valid")
        .fetch_business_token(&business("1"))
        .await
        .expect_err("wrong token");
    assert_eq!((err.code(), err.is_transient()), (Some(190), false));

    let mut cfg = config(&sim.base);
    cfg.app_secret = SecretString::from("not-the-app-secret");
    let err = GraphClient::new(cfg)
        .expect("valid")
        .fetch_business_token(&business("1"))
        .await
        .expect_err("wrong proof");
    assert_eq!((err.code(), err.is_transient()), (Some(100), false));
    assert!(err.summary().contains("appsecret_proof"));

    let graph = sim.client();
    for token in ["EAAnotissued", SYSTEM_USER_TOKEN, "sim-1-0000000000000000"] {
        let err = graph
            .subscribe_app(&waba("2"), &SecretString::from(token))
            .await
            .expect_err("not a business token");
        assert_eq!(err.code(), Some(190), "{token}");
    }
    assert_eq!(sim.calls().await["rejected"], 5);
    sim.stop().await;
}

#[tokio::test]
async fn raw_requests_get_graph_shaped_answers() {
    let sim = Sim::start(SimConfig::new(SecretString::from(APP_SECRET))).await;
    let p = proof(APP_SECRET, SYSTEM_USER_TOKEN);
    let route = "/v22.0/5/system_user_access_tokens";

    let (status, _, err) = sim
        .post(
            route,
            &[
                ("access_token", SYSTEM_USER_TOKEN),
                ("appsecret_proof", &p),
                ("system_user_id", "1"),
            ],
        )
        .await;
    assert_eq!(
        (status, err.code()),
        (400, Some(100)),
        "fetch_only=true is required"
    );

    let (status, _, err) = sim
        .post(route, &[("fetch_only", "true"), ("system_user_id", "1")])
        .await;
    assert_eq!(
        (status, err.code()),
        (400, Some(104)),
        "an access token is required"
    );

    // Lenient mode: any token, no proof needed, but a wrong proof is still refused.
    let (status, body, _) = sim
        .post(
            route,
            &[
                ("access_token", "x"),
                ("fetch_only", "true"),
                ("system_user_id", "1"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        body["access_token"]
            .as_str()
            .expect("token")
            .starts_with("sim-5-")
    );
    let (status, _, err) = sim
        .post(
            route,
            &[
                ("access_token", "x"),
                ("appsecret_proof", "00"),
                ("fetch_only", "true"),
                ("system_user_id", "1"),
            ],
        )
        .await;
    assert_eq!((status, err.code()), (400, Some(100)));

    // Parameters in a form body count, as on Graph.
    let reply = sim
        .http
        .post(format!("{}/v22.0/5/subscribed_apps", sim.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("access_token=abc")
        .send()
        .await
        .expect("post");
    assert_eq!(reply.status(), 200);

    for (method, route) in [
        ("GET", "/v22.0/5/system_user_access_tokens"),
        ("POST", "/v22.0/5/messages"),
        ("POST", "/nope"),
    ] {
        let reply = sim
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{route}", sim.base),
            )
            .send()
            .await
            .expect("send");
        let status = reply.status().as_u16();
        let body = reply.bytes().await.expect("body");
        let err = parse_error(status, &http::HeaderMap::new(), &body);
        assert_eq!(
            (status, err.code(), err.is_transient()),
            (404, Some(100), false),
            "{method} {route}"
        );
        assert!(err.fbtrace_id().is_some());
    }

    let reply = sim
        .http
        .post(format!("{}/_sim/mode", sim.base))
        .body(r#"{"fail_transient": -1}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), 400);
    let reply = sim
        .http
        .post(format!("{}/_sim/mode", sim.base))
        .body(r#"{"fail_permanet": true}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), 400, "typos are refused, not ignored");
    assert_eq!(sim.calls().await["not_found"], 3);
    sim.stop().await;
}

#[tokio::test]
async fn logs_and_spans_never_hold_a_secret() {
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let buffer = Arc::clone(&buffer);
        move || Capture(Arc::clone(&buffer))
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Every path that logs: a retried failure, success, a permanent failure, a mode change.
    let sim = Sim::start(SimConfig {
        fail_transient: 1,
        ..Sim::strict()
    })
    .await;
    let graph = sim.client();
    let token = graph
        .fetch_business_token(&business("31337"))
        .await
        .expect("token");
    graph
        .subscribe_app(&waba("4242"), &token)
        .await
        .expect("subscribed");
    sim.set_mode(json!({"fail_permanent": true})).await;
    graph
        .subscribe_app(&waba("4242"), &token)
        .await
        .expect_err("permanent");
    sim.stop().await;

    let logs = String::from_utf8(buffer.lock().expect("lock").clone()).expect("utf8");
    assert_no_secret(
        &logs,
        &[
            APP_SECRET,
            SYSTEM_USER_TOKEN,
            &proof(APP_SECRET, SYSTEM_USER_TOKEN),
            token.expose_secret(),
            &proof(APP_SECRET, token.expose_secret()),
            "access_token=",
        ],
    );
    for expected in [
        "transient Graph error, retrying",
        "otel.kind=\"client\"",
        "url.template=\"/{business_id}/system_user_access_tokens\"",
        "url.template=\"/{waba_id}/subscribed_apps\"",
        "http.response.status_code=500",
        "http.response.status_code=400",
        "graph.error.code=190",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in\n{logs}");
    }
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
