//! The worker's operations endpoint on `WA_METRICS_LISTEN`: `/healthz` (alive), `/readyz`
//! (broker channel up and Redis answering), `/metrics` (Prometheus text).

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
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

async fn route(
    req: Request<Incoming>,
    broker: Broker,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    Ok(match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/healthz") => text(StatusCode::OK, PLAIN, "ok\n"),
        (&http::Method::GET, "/readyz") if broker.is_ready() => {
            text(StatusCode::OK, PLAIN, "ready\n")
        }
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
    broker: Broker,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (broker, metrics) = (broker.clone(), metrics.clone());
        let service =
            hyper::service::service_fn(move |req| route(req, broker.clone(), metrics.clone()));
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service),
        );
    }
}
