//! `wa-bench minimal-receiver`: the floor of this stack, run as a `--receiver` of `wa-bench
//! ingress` to tell how much of the ingress's CPU per webhook is hyper + lapin + the kernel and
//! how much is wa-onboard's own. It does what the Node peer does: verify the signature in
//! constant time, parse into borrowed fields, publish each change persistent (message id: the
//! hex SHA-256 of its body) on ONE confirm channel shared by all requests, `200` once all acked.
//!
//! Deliberately NOT a correct receiver, a benchmark reference only: no bounds (connections,
//! entries, header time), no `mandatory` publish or alternate exchange (an unroutable message
//! is lost), no dedupe semantics (the id hashes the bytes it built), no escaped `object` or
//! `field`, no reconnection, no hub challenge, no logs or metrics.

use std::convert::Infallible;

use anyhow::Context;
use futures_util::future::join_all;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Bytes, body::Incoming};
use hyper::{header::HeaderValue, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use wa_broker::lapin::types::{AMQPValue, FieldTable};
use wa_broker::lapin::{BasicProperties, Channel, Connection, ExchangeKind, options::*};

/// What every request shares, for the life of the process.
struct State {
    channel: Channel,
    secret: Vec<u8>,
    exchange: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    object: &'a str,
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)] // and so every field: `'de: 'a`.
    id: &'a RawValue,
    time: &'a RawValue,
    #[serde(default)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    field: &'a str,
    value: &'a RawValue,
}

/// The published body, the Node peer's.
#[derive(Serialize)]
struct Message<'a> {
    object: &'a str,
    entry_id: &'a RawValue,
    entry_time: &'a RawValue,
    field: &'a str,
    value: &'a RawValue,
}

/// Reads `WA_LISTEN` (or `PORT`), `AMQP_URL`, `WA_APP_SECRET` (the first of a comma list) and
/// `WA_AMQP_PREFIX` (default `minimal`; the benchmark gives a fresh one and deletes its
/// `{prefix}.webhooks` and `{prefix}.account_update` after the phase), declares the Node
/// peer's topology under it, opens the confirm channel, then serves until killed.
pub async fn run() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let listen = env("WA_LISTEN").or_else(|_| env("PORT").map(|p| format!("127.0.0.1:{p}")))?;
    let url = env("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let secrets = env("WA_APP_SECRET")?;
    let prefix = env("WA_AMQP_PREFIX").unwrap_or_else(|_| "minimal".into());
    let exchange = format!("{prefix}.webhooks");
    let queue = format!("{prefix}.account_update");

    let connection = Connection::connect(&url, Default::default()).await?;
    let channel = connection.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let (name, topic) = (exchange.as_str().into(), ExchangeKind::Topic);
    channel
        .exchange_declare(name, topic, durable, FieldTable::default())
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let (mut args, quorum) = (FieldTable::default(), "quorum".into());
    args.insert("x-queue-type".into(), AMQPValue::LongString(quorum));
    channel
        .queue_declare(queue.as_str().into(), durable, args)
        .await?;
    let (queue, bound, key) = (queue.into(), exchange.as_str().into(), "*.account_update");
    let options = QueueBindOptions::default();
    channel
        .queue_bind(queue, bound, key.into(), options, FieldTable::default())
        .await?;
    channel.confirm_select(Default::default()).await?;

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let secret = secrets.split(',').next().unwrap_or_default().trim().into();
    let state = State {
        channel,
        secret,
        exchange,
    };
    let state: &'static State = Box::leak(Box::new(state));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service_fn(move |request| async move {
            let mut response = Response::new(Empty::<Bytes>::new());
            *response.status_mut() = accept(state, request).await;
            Ok::<_, Infallible>(response)
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

/// `POST /webhooks/whatsapp`: collect (up to 1 MiB), verify, parse, publish every change;
/// `200` once all are acked. Any other request: `404`.
async fn accept(state: &State, request: Request<Incoming>) -> StatusCode {
    if request.method() != Method::POST || request.uri().path() != "/webhooks/whatsapp" {
        return StatusCode::NOT_FOUND;
    }
    let signature = request.headers().get("x-hub-signature-256").cloned();
    let Ok(body) = Limited::new(request.into_body(), 1 << 20).collect().await else {
        return StatusCode::PAYLOAD_TOO_LARGE;
    };
    let body = body.to_bytes();
    if !signed(&state.secret, signature.as_ref(), &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    match publish(state, &envelope).await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Publishes every change on the shared channel, in flight there beside other requests'
/// publishes, then waits for their confirms; `true` when every one is an ack.
async fn publish(state: &State, envelope: &Envelope<'_>) -> anyhow::Result<bool> {
    let mut confirms = Vec::new();
    for entry in &envelope.entry {
        for change in &entry.changes {
            let (object, field) = (envelope.object, change.field);
            let body = serde_json::to_vec(&Message {
                object,
                entry_id: entry.id,
                entry_time: entry.time,
                field,
                value: change.value,
            })?;
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(hex::encode(Sha256::digest(&body)).into());
            let (exchange, key) = (state.exchange.as_str().into(), format!("{object}.{field}"));
            let options = BasicPublishOptions::default();
            let channel = &state.channel;
            let confirm = channel.basic_publish(exchange, key.into(), options, &body, properties);
            confirms.push(confirm.await?);
        }
    }
    let confirmed = join_all(confirms).await;
    Ok(confirmed.into_iter().all(|c| c.is_ok_and(|c| c.is_ack())))
}

/// `sha256=<64 hex>` that `secret` produces for `body`, compared in constant time.
fn signed(secret: &[u8], header: Option<&HeaderValue>, body: &[u8]) -> bool {
    let Some(digits) = header.and_then(|h| h.as_bytes().strip_prefix(b"sha256=")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    let mut claimed = [0u8; 32];
    hex::decode_to_slice(digits, &mut claimed).is_ok() && mac.verify_slice(&claimed).is_ok()
}
