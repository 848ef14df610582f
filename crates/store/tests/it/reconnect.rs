//! Connection loss and recovery, through a TCP proxy that can cut Redis off.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{ConnectionAddr, IntoConnectionInfo};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use wa_store::{Status, Store};

use crate::helpers::{TestStore, eventually, install, redis_url, waba_id};

/// A TCP proxy in front of Redis that can cut every connection and refuse new ones.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Self {
        let info = redis_url().into_connection_info().unwrap();
        let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            panic!("REDIS_URL must be a TCP address for this test");
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::<JoinHandle<()>>::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let upstream = format!("{host}:{port}");
                conns2.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self {
            addr,
            up,
            conns,
            accept,
        }
    }

    /// The Redis URL through the proxy (same database).
    fn url(&self) -> String {
        let db = redis_url()
            .into_connection_info()
            .unwrap()
            .redis_settings()
            .db();
        format!("redis://{}/{db}", self.addr)
    }

    fn cut(&self, stay_down: bool) {
        self.up.store(!stay_down, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut(true);
        self.accept.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_from_a_dropped_connection_and_an_outage() {
    let t = TestStore::new().await;
    let proxy = Proxy::start().await;
    let store = Store::connect(&proxy.url(), &t.prefix).await.unwrap();
    store
        .apply_install(&install("1001", "2002", 100))
        .await
        .unwrap();

    // The connection drops: calls fail transiently or succeed, and soon succeed again.
    proxy.cut(false);
    eventually(Duration::from_secs(10), || async {
        match store.get(&waba_id("1001")).await {
            Ok(r) => Some(r),
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                None
            }
        }
    })
    .await;

    // Redis stays unreachable: calls fail, transiently, within a few seconds.
    proxy.cut(true);
    let err = eventually(Duration::from_secs(15), || async {
        store.get(&waba_id("1001")).await.err()
    })
    .await;
    assert!(err.is_transient(), "{err}");

    // It comes back: the same handle works again without being recreated.
    proxy.restore();
    let r = eventually(Duration::from_secs(15), || async {
        store.get(&waba_id("1001")).await.ok().flatten()
    })
    .await;
    assert_eq!(r.status, Status::Installed);
}
