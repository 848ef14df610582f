//! The worker's operations endpoint on `WA_METRICS_LISTEN`: `/healthz` (alive), `/readyz`
//! (broker connection up and not blocked by a resource alarm, and Redis answering),
//! `/metrics` (Prometheus text).

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wa_broker::Broker;

use crate::metrics::Metrics;

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    /// The broker connection.
    pub broker: Broker,
    /// Set once Redis has answered at start with enough replicas (the consumers only start
    /// then).
    pub store_connected: Arc<AtomicBool>,
    /// Until then, why not, when Redis answered: a primary with fewer replicas than
    /// `WA_REDIS_WAIT_REPLICAS`, not asked, or refusing the `INFO` that tells.
    pub store_waiting: Arc<Mutex<Option<String>>>,
}

/// `/readyz` while Redis is not ready: why.
fn store_not_ready(ready: &Readiness) -> String {
    match ready.store_waiting.lock().ok().and_then(|w| w.clone()) {
        Some(why) => format!("redis: {why}; not consuming\n"),
        None => "redis not connected\n".to_owned(),
    }
}

async fn route(
    req: Request<Incoming>,
    ready: Readiness,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    Ok(match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/healthz") => text(StatusCode::OK, PLAIN, "ok\n"),
        (&http::Method::GET, "/readyz") if !ready.store_connected.load(Ordering::Relaxed) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            store_not_ready(&ready),
        ),
        (&http::Method::GET, "/readyz") if ready.broker.is_ready() => {
            text(StatusCode::OK, PLAIN, "ready\n")
        }
        (&http::Method::GET, "/readyz") if ready.broker.blocked().is_some() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "broker blocks publishing (resource alarm)\n",
        ),
        (&http::Method::GET, "/readyz") => text(
            StatusCode::SERVICE_UNAVAILABLE,
            PLAIN,
            "broker not connected\n",
        ),
        (&http::Method::GET, "/metrics") => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n"),
    })
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    ready: Readiness,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // E.g. out of file descriptors: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (ready, metrics) = (ready.clone(), metrics.clone());
        let service =
            hyper::service::service_fn(move |req| route(req, ready.clone(), metrics.clone()));
        tokio::spawn(builder.serve_connection(TokioIo::new(stream), service));
    }
}
