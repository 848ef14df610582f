//! The route table of docs/REFERENCE.md ("Ingress routes") and the webhook delivery path:
//! size check → reserve unverified bytes → read (bounded) → signature → envelope → publish
//! with confirms → answer.
//! The Embedded Signup session event route is in [`signup`].

mod signup;

use std::{convert::Infallible, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{Instrument, field::Empty, info, warn};
use wa_broker::{Broker, BrokerError, Outgoing};
use wa_envelope::{Envelope, signature};
use wa_telemetry::{TRACEPARENT, traceparent};

use wa_http::{Reply, reply};

use crate::{IngressConfig, Metrics, metrics::Held};

/// The path Meta delivers to.
pub const WEBHOOK_PATH: &str = "/webhooks/whatsapp";
/// The target of a request's spans: for the trace exporter only (see
/// `wa_telemetry::TRACE_ONLY`), so with no exporter they cost nothing per request.
pub(crate) const TRACE_TARGET: &str = "wa_ingress::trace";
/// Longest `hub.challenge` echoed back; Meta's are short numbers.
const MAX_CHALLENGE_LEN: usize = 256;

/// Shared state of every request.
pub(crate) struct App {
    pub(crate) config: IngressConfig,
    broker: Broker,
    pub(crate) metrics: Metrics,
    exchange: String,
    /// One permit per byte of unverified body that may be held (`WA_MAX_UNVERIFIED_BYTES`).
    unverified: tokio::sync::Semaphore,
}

impl App {
    pub(crate) fn new(config: IngressConfig, broker: Broker) -> Self {
        let exchange = config.broker.topology.webhooks_exchange();
        let unverified = tokio::sync::Semaphore::new(
            config
                .max_unverified_bytes
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        );
        Self {
            unverified,
            config,
            broker,
            metrics: Metrics::default(),
            exchange,
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    reply(status, "text/plain; charset=utf-8", body)
}

/// Entry point for every request.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let route = match req.uri().path() {
        WEBHOOK_PATH => "webhook",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        signup::SIGNUP_PATH => "signup",
        _ => "other",
    };
    let span = wa_http::request_span!(target: TRACE_TARGET, route, req.method(), changes);
    let app2 = app.clone();
    let response = async move {
        let _in_flight = Held::new(&app.metrics.in_flight, 1);
        match (req.method(), route) {
            (&Method::GET, "webhook") => handshake(&app, &req),
            (&Method::POST, "webhook") => deliver(&app, req).await,
            (&Method::GET, "healthz") => text(StatusCode::OK, "ok\n"),
            (&Method::GET, "readyz") => readyz(&app),
            (&Method::GET, "metrics") => {
                app.metrics
                    .broker_ready
                    .set(i64::from(app.broker.is_ready()));
                reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    app.metrics.encode(),
                )
            }
            (_, "other") => text(StatusCode::NOT_FOUND, "not found\n"),
            // Off unless WA_SIGNUP_API_TOKEN is set: then it does not exist.
            (_, "signup") if app.config.signup_api_token.is_none() => {
                text(StatusCode::NOT_FOUND, "not found\n")
            }
            (&Method::POST, "signup") => signup::receive(&app, req).await,
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        }
    }
    .instrument(span.clone())
    .await;
    span.record("http.response.status_code", response.status().as_u16());
    app2.metrics.request(route, response.status().as_u16());
    Ok(response)
}

/// Compares a presented credential with a configured secret in constant time, length
/// included: both are hashed first, so neither the secret nor its length leaks.
pub(crate) fn secret_eq(given: &[u8], expected: &secrecy::SecretString) -> bool {
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

fn readyz(app: &App) -> Reply {
    if app.broker.is_ready() {
        text(StatusCode::OK, "ready\n")
    } else if app.broker.blocked().is_some() {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker blocks publishing (resource alarm)\n",
        )
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "broker not connected\n")
    }
}

/// `GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C` → `200 C` when `T` matches.
fn handshake(app: &App, req: &Request<Incoming>) -> Reply {
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "hub.mode" => mode = Some(value),
            "hub.verify_token" => token = Some(value),
            "hub.challenge" => challenge = Some(value),
            _ => {}
        }
    }
    let token_ok = token.is_some_and(|t| secret_eq(t.as_bytes(), &app.config.verify_token));
    match (mode.as_deref(), challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            if challenge.len() > MAX_CHALLENGE_LEN {
                return text(StatusCode::BAD_REQUEST, "hub.challenge too long\n");
            }
            info!("webhook subscription verified");
            text(StatusCode::OK, challenge.into_owned())
        }
        _ => {
            warn!("webhook verification refused");
            text(StatusCode::FORBIDDEN, "verification failed\n")
        }
    }
}

fn unavailable(app: &App, why: &str) -> Reply {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{why}; retry later\n"),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(app.config.retry_after_secs),
    );
    response
}

/// The `503` for a publish the broker did not take, saying why in a word.
fn not_published(app: &App, error: &BrokerError) -> Reply {
    match error {
        BrokerError::Blocked(_) => unavailable(app, "broker blocks publishing"),
        _ => unavailable(app, "broker did not confirm"),
    }
}

/// A signed delivery: bounded read, verify, split, publish, and `200` only when confirmed.
async fn deliver(app: &App, req: Request<Incoming>) -> Reply {
    let max = app.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    }
    // Unauthenticated bytes are bounded across every request, not only per request: the
    // body's room is reserved before a byte of it is read, and given back once its
    // signature is checked (or it is refused).
    let reserve = declared.map_or(max, |len| len as usize);
    let Ok(reserved) = u32::try_from(reserve)
        .ok()
        .and_then(|n| app.unverified.try_acquire_many(n).ok())
        .ok_or(())
    else {
        app.metrics.overloaded("unverified_bytes");
        warn!(
            bytes = reserve,
            "unverified bodies at WA_MAX_UNVERIFIED_BYTES; refusing"
        );
        return unavailable(app, "too many unverified bodies in flight");
    };
    let unverified = Held::new(&app.metrics.unverified_bytes, reserve as i64);
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(app.config.read_timeout, Limited::new(body, max).collect());
    let body = match read.await {
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "body not received in time\n"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        Ok(Err(_)) => return text(StatusCode::BAD_REQUEST, "body could not be read\n"),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    app.metrics.body_bytes.inc_by(body.len() as u64);

    let header = parts
        .headers
        .get("x-hub-signature-256")
        .map(HeaderValue::as_bytes);
    let secrets: Vec<&[u8]> = app
        .config
        .app_secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes())
        .collect();
    if let Err(e) = signature::verify(&secrets, header, &body) {
        app.metrics
            .signature_failures
            .get_or_create(&crate::metrics::ReasonLabels {
                reason: e.as_label(),
            })
            .inc();
        warn!(reason = e.as_label(), "webhook signature refused");
        return text(StatusCode::UNAUTHORIZED, format!("{e}\n"));
    }
    drop((reserved, unverified));

    let envelope = match Envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(e) => {
            warn!(error = %e, "signed webhook is not an envelope");
            return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let received_at = unix_now();
    // The producer span (OTel messaging conventions) is the parent of every consumer span.
    let publish_span = tracing::info_span!(
        target: TRACE_TARGET,
        "publish",
        otel.kind = "producer",
        otel.name = %format_args!("publish {}", app.exchange),
        messaging.system = "rabbitmq",
        messaging.operation.type = "publish",
        messaging.destination.name = %app.exchange,
        messaging.batch.message_count = envelope.change_count(),
        messaging.message.id = Empty,
    );
    let trace = traceparent(&publish_span);
    let messages: Vec<Outgoing> = envelope
        .to_publishable(received_at)
        .into_iter()
        .map(|change| {
            Outgoing::persistent_json(
                app.exchange.as_str(),
                change.routing_key,
                change.body,
                change.id.as_str(),
                received_at.unsigned_abs(),
            )
            .header(TRACEPARENT, trace.as_str())
        })
        .collect();
    tracing::Span::current().record("changes", messages.len());
    if messages.is_empty() {
        return text(StatusCode::OK, "ok\n");
    }
    if let [only] = messages.as_slice() {
        let id = only
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string);
        publish_span.record("messaging.message.id", id.unwrap_or_default());
    }
    let started = Instant::now();
    let count = messages.len();
    match app
        .broker
        .publish_owned(messages)
        .instrument(publish_span)
        .await
    {
        Ok(()) => {
            app.metrics
                .publish_seconds
                .observe(started.elapsed().as_secs_f64());
            app.metrics.changes_published.inc_by(count as u64);
            text(StatusCode::OK, "ok\n")
        }
        Err(e) => {
            warn!(error = %e, changes = count, "delivery not confirmed; asking Meta to retry");
            not_published(app, &e)
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
