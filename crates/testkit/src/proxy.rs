//! [`Proxy`]: a TCP proxy in front of RabbitMQ or Redis that a test can cut, freeze and
//! restore. Owns only the relaying; knows nothing of the protocols it carries.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

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
