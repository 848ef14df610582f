//! Helpers for wa-onboard's integration tests, shared so each test binary does not grow its
//! own copy: [`eventually`] (poll with a deadline instead of sleeping), [`Proxy`] (a TCP
//! proxy in front of RabbitMQ or Redis that a test can cut, freeze and restore), and
//! [`forget_redis_prefix`] (a test's Redis keys removed, even from a `Drop` after a panic).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// Deadline polling: `check` until it returns `Some`, or panic with `what` after `within`.
/// # Panics
///
/// When `within` passes first.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A TCP proxy in front of RabbitMQ. `cut` drops every connection and refuses new ones until
/// `restore`; `freeze` keeps connections open but stops relaying bytes (a broker that never
/// answers).
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    flowing: watch::Sender<bool>,
    kill: Arc<Mutex<CancellationToken>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.kill.lock().expect("lock").cancel();
    }
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` towards `upstream` (`host:port`).
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (up, up_rx) = watch::channel(true);
        let (flowing, flow_rx) = watch::channel(true);
        let kill = Arc::new(Mutex::new(CancellationToken::new()));
        let kill2 = kill.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !*up_rx.borrow() {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let token = kill2.lock().expect("lock").clone();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                for (r, w) in [
                    (
                        Box::new(cr) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                        Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                    ),
                    (Box::new(sr), Box::new(cw)),
                ] {
                    let token = token.clone();
                    let flow = flow_rx.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = token.cancelled() => {}
                            () = relay(r, w, flow) => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            up,
            flowing,
            kill,
            task,
        }
    }

    /// Drops every proxied connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_replace(false);
        let mut kill = self.kill.lock().expect("lock");
        kill.cancel();
        *kill = CancellationToken::new();
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.flowing.send_replace(true);
        self.up.send_replace(true);
    }

    /// Keeps connections open but relays nothing more.
    pub fn freeze(&self) {
        self.flowing.send_replace(false);
    }
}

async fn relay(
    mut from: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    mut to: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    mut flowing: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if flowing.wait_for(|f| *f).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Deletes every Redis key under `prefix` (`SCAN` + `UNLINK`). Synchronous on purpose, so a
/// test's `Drop` can call it even after a panic; errors are ignored (cleanup is best effort).
pub fn forget_redis_prefix(redis_url: &str, prefix: &str) {
    let Ok(mut conn) = redis::Client::open(redis_url).and_then(|c| c.get_connection()) else {
        return;
    };
    let mut cursor = 0u64;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("UNLINK").arg(&keys).query(&mut conn);
        }
        cursor = next;
        if cursor == 0 {
            return;
        }
    }
}
