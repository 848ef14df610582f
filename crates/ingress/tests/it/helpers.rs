//! `spawn_app`: the real ingress on port 0, with its own exchange and queue prefix, optionally
//! reaching RabbitMQ through a [`Proxy`] the test can cut, freeze and restore.

use std::{
    sync::Once,
    time::{Duration, Instant},
};

use lapin::{
    Channel, Connection, ConnectionProperties,
    options::{BasicGetOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};
use secrecy::SecretString;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use wa_broker::{BrokerConfig, Topology};
use wa_ingress::IngressConfig;
pub use wa_testkit::{Proxy, amqp_url, eventually};

pub const SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber_init();
        }
    });
}

fn tracing_subscriber_init() -> Option<()> {
    wa_telemetry::init("wa-onboard-ingress-tests")
        .ok()
        .map(std::mem::forget)
}

/// How a test wants its ingress.
pub struct Options {
    pub secrets: Vec<&'static str>,
    pub max_body_bytes: usize,
    pub through_proxy: bool,
    /// `WA_SIGNUP_API_TOKEN`: `None` leaves `/v1/signup-events` off.
    pub signup_api_token: Option<&'static str>,
    pub confirm_timeout: Duration,
    /// Confirm channels in the publisher pool.
    pub channels: usize,
    /// `WA_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// `WA_MAX_UNVERIFIED_BYTES`.
    pub max_unverified_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secrets: vec![SECRET],
            max_body_bytes: 4 * 1024 * 1024,
            through_proxy: false,
            confirm_timeout: Duration::from_secs(10),
            signup_api_token: None,
            channels: 4,
            max_connections: 1024,
            max_unverified_bytes: 64 * 1024 * 1024,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub topology: Topology,
    pub proxy: Option<Proxy>,
    /// A direct connection of the test's own, to inspect and arrange the broker.
    pub channel: Channel,
    _connection: Connection,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), wa_ingress::IngressError>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    init_tracing();
    let prefix = format!("t{:016x}", rand::random::<u64>());
    let topology = Topology::new(prefix);
    let proxy = if options.through_proxy {
        Some(Proxy::start(wa_testkit::amqp_addr()).await)
    } else {
        None
    };
    let url = match &proxy {
        Some(proxy) => {
            let direct: lapin::uri::AMQPUri = amqp_url().parse().expect("AMQP_URL");
            format!(
                "amqp://{}:{}@{}/%2f",
                direct.authority.userinfo.username, direct.authority.userinfo.password, proxy.addr
            )
        }
        None => amqp_url(),
    };
    let mut broker = BrokerConfig::new(&url, topology.clone()).expect("broker config");
    broker.reconnect_min = Duration::from_millis(50);
    broker.reconnect_max = Duration::from_millis(300);
    broker.confirm_timeout = options.confirm_timeout;
    broker.connect_timeout = Duration::from_secs(2);
    broker.channels = options.channels;
    let mut config = IngressConfig::new(
        options
            .secrets
            .iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect(),
        SecretString::from(VERIFY_TOKEN.to_string()),
        broker,
    );
    config.max_body_bytes = options.max_body_bytes;
    config.max_connections = options.max_connections;
    config.max_unverified_bytes = options.max_unverified_bytes;
    config.retry_after_secs = 7;
    config.signup_api_token = options
        .signup_api_token
        .map(|t| SecretString::from(t.to_owned()));

    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("test connection to RabbitMQ");
    let channel = connection.create_channel().await.expect("test channel");
    // Declared first, so the ingress's own declaration below proves the topology idempotent
    // (two declarations of a new quorum queue at once may race inside RabbitMQ).
    topology.declare(&channel).await.expect("declare topology");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(wa_ingress::run(listener, config, shutdown.clone()));
    let app = TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        topology,
        proxy,
        channel,
        _connection: connection,
        shutdown,
        server: Some(server),
    };
    if !options.through_proxy {
        app.wait_ready().await;
    }
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn ready(&self) -> bool {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    pub async fn wait_ready(&self) {
        eventually(Duration::from_secs(15), "ingress ready", || async {
            self.ready().await.then_some(())
        })
        .await;
    }

    /// The Prometheus exposition, scraped with the test's client.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await;
        r.expect("GET /metrics").text().await.expect("metrics body")
    }

    /// The value of one series of the exposition (`name{labels}` as exported), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// POSTs `body` signed with `secret`.
    pub async fn post_signed_with(&self, secret: &str, body: &[u8]) -> reqwest::Response {
        self.client
            .post(self.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                wa_envelope::sign(secret.as_bytes(), body),
            )
            .body(body.to_vec())
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        self.post_signed_with(SECRET, body).await
    }

    /// Takes (and acks) every message now in `queue`, waiting until at least `at_least`
    /// have arrived.
    pub async fn drain(&self, queue: &str, at_least: usize) -> Vec<lapin::message::Delivery> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        loop {
            while let Some(m) = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic_get")
            {
                got.push(m.delivery);
            }
            if got.len() >= at_least {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {at_least} messages in {queue}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length) over a raw socket
    /// and returns the status code.
    pub async fn post_chunked(&self, signature: &str, body: &[u8]) -> u16 {
        let addr = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!(
            "POST /webhooks/whatsapp HTTP/1.1\r\nhost: {addr}\r\nx-hub-signature-256: {signature}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        .into_bytes();
        for chunk in body.chunks(512) {
            req.extend(format!("{:x}\r\n", chunk.len()).bytes());
            req.extend(chunk);
            req.extend(b"\r\n");
        }
        req.extend(b"0\r\n\r\n");
        // The server may answer and close before the whole body is written.
        let _ = stream.write_all(&req).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let text = String::from_utf8_lossy(&answer);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line")
    }

    /// Messages currently in `queue` (passive declare).
    pub async fn depth(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare")
            .message_count()
    }

    /// Binds a queue that refuses every message (`x-max-length 0`, `reject-publish`) to the
    /// webhooks exchange for `routing_key`: the broker then nacks what matches. Returns its name.
    pub async fn refuse_publishes(&self, routing_key: &str) -> String {
        let full = format!("{}.full", self.topology.prefix());
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
        let options = QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        self.channel
            .queue_declare(full.as_str().into(), options, args)
            .await
            .expect("declare the refusing queue");
        self.channel
            .queue_bind(
                full.as_str().into(),
                self.topology.webhooks_exchange().into(),
                routing_key.into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind the refusing queue");
        full
    }

    pub fn account_update(&self) -> String {
        self.topology.account_update_queue()
    }

    /// Stops the ingress gracefully and removes the test's queues and exchanges.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("ingress stops after shutdown")
                .expect("ingress task")
                .expect("ingress result");
        }
        let _ = self.topology.delete(&self.channel).await;
    }
}

/// A one-change `account_update` envelope for WABA `waba`.
pub fn install_body(waba: &str, time: i64) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "2949482758682047", "time": time, "changes": [{
            "field": "account_update",
            "value": {"event": "PARTNER_APP_INSTALLED", "waba_info": {
                "waba_id": waba, "owner_business_id": "942647313864044", "partner_app_id": "1"}}
        }]}]
    })
    .to_string()
    .into_bytes()
}

/// A one-change envelope for a `field` no queue is bound to (it goes to the alternate
/// exchange).
pub fn field_body(field: &str, time: i64) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "2949482758682047", "time": time, "changes": [{
            "field": field,
            "value": {"messaging_product": "whatsapp", "statuses": []}
        }]}]
    })
    .to_string()
    .into_bytes()
}

/// The project's copy of a fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
