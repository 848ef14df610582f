//! The accept loop: HTTP/1 and HTTP/2 connections on a listener until shutdown, then no new
//! connection and up to a grace period for the requests in flight. It owns the header read
//! timeout, surviving accept errors (a full file table must not stop a server) and the
//! drain. It never answers a request itself and never decides which connection is admitted:
//! the server's handler and admission hook do.

use std::{convert::Infallible, future::Future, time::Duration};

use hyper::{Request, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Reply;

/// How the accept loop runs.
#[derive(Debug, Clone, Copy)]
pub struct Serve {
    /// The server's name in its logs (`ingress`, `api`).
    pub role: &'static str,
    /// How long a client may take to send its request headers.
    pub read_timeout: Duration,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

/// Serves `handler` on `listener` until `shutdown` is cancelled, then stops accepting and
/// lets in-flight requests finish (up to `shutdown_grace`).
///
/// `admit` is asked once per accepted connection: `None` closes it unread (it costs nothing
/// more); `Some(guard)` serves it, and the guard is dropped when the connection ends (a
/// permit, an open-connections gauge). `handler` is cloned once per connection and called
/// once per request.
pub async fn serve<A, G, H, F>(
    listener: TcpListener,
    options: Serve,
    shutdown: CancellationToken,
    mut admit: A,
    handler: H,
) where
    A: FnMut() -> Option<G>,
    G: Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Reply, Infallible>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(guard) = admit() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = builder
            .serve_connection(TokioIo::new(stream), service_fn(handler.clone()))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "connection ended with an error");
            }
            drop(guard);
        });
    }
    drop(listener);
    info!("{} draining in-flight requests", options.role);
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("shutdown grace elapsed with requests still in flight");
    }
}
