//! The traffic a test puts through the stack: signed `PARTNER_APP_INSTALLED` webhooks as Meta
//! sends them (a new WABA and business each), one at a time, in bursts or as a steady stream,
//! and the HTTP answer each one got. Reads nothing else about the stack.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{APP_SECRET, stack::Stack};

/// First index the tests keep for their own probes and bursts; a stream uses those below.
const STREAM_INDEXES: u32 = 40_000;

impl Stack {
    /// The WABA id of install `index` of this run (its owner business id is [`Self::owner`]).
    pub fn waba(&self, index: u32) -> String {
        waba_id(self.run, index)
    }

    pub fn owner(&self, index: u32) -> String {
        owner_id(self.run, index)
    }

    fn webhook_url(&self) -> String {
        format!("{}/webhooks/whatsapp", self.ingress.base())
    }

    /// Streams one signed install after another (a new WABA and business each time, at most
    /// one every `every`) until [`InstallStream::stop`].
    pub fn stream_installs(&self, every: Duration) -> InstallStream {
        let stop = CancellationToken::new();
        let http = self.http.clone();
        let url = self.webhook_url();
        let run = self.run;
        let stop2 = stop.clone();
        let task = tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for index in 0..STREAM_INDEXES {
                tokio::select! {
                    () = stop2.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let (waba, owner) = (waba_id(run, index), owner_id(run, index));
                let status = post_install(&http, &url, &waba, &owner).await;
                sent.push(Answer {
                    waba,
                    status,
                    at: Instant::now(),
                });
            }
            sent
        });
        InstallStream { stop, task }
    }

    /// Posts one signed install for `index`; its HTTP status (`None`: no answer).
    pub async fn send_install(&self, index: u32) -> Option<u16> {
        post_install(
            &self.http,
            &self.webhook_url(),
            &self.waba(index),
            &self.owner(index),
        )
        .await
    }

    /// Posts one signed install for `index`; its HTTP status and body (`None`: no answer).
    pub async fn send_install_reply(&self, index: u32) -> Option<(u16, String)> {
        let url = self.webhook_url();
        let reply = install_request(&self.http, &url, &self.waba(index), &self.owner(index))
            .send()
            .await
            .ok()?;
        let status = reply.status().as_u16();
        Some((status, reply.text().await.unwrap_or_default()))
    }

    /// Posts one new install after another (indexes from [`STREAM_INDEXES`] on, one every
    /// 50 ms) until one is answered 200: how many were sent, the WABA acknowledged, and how
    /// long after `since` it was.
    ///
    /// # Panics
    ///
    /// When no 200 comes within `within` of `since`.
    pub async fn probe_until_200(&self, since: Instant, within: Duration) -> Probed {
        // Each probe a new WABA: the same one again would be a newer install of it.
        for index in STREAM_INDEXES.. {
            if self.send_install(index).await == Some(200) {
                return Probed {
                    sent: (index - STREAM_INDEXES + 1) as usize,
                    acked: self.waba(index),
                    after: since.elapsed(),
                };
            }
            assert!(since.elapsed() < within, "no 200 within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!("the probe indexes ran out")
    }

    /// Posts installs `from..from + n` all at once; the WABAs answered 200.
    pub async fn burst(&self, from: u32, n: u32) -> Vec<String> {
        let sends = (from..from + n).map(|i| async move {
            (self.send_install(i).await == Some(200)).then(|| self.waba(i))
        });
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// WABA `index` of run `run`: `1`, the run's 8 digits, the index's 5.
fn waba_id(run: u32, index: u32) -> String {
    format!("1{run}{index:05}")
}

/// The business owning [`waba_id`]: the same digits after a `2`.
fn owner_id(run: u32, index: u32) -> String {
    format!("2{run}{index:05}")
}

/// The business that owns `waba` (an id made by [`waba_id`]).
pub fn owner_of(waba: &str) -> String {
    format!("2{}", &waba[1..])
}

/// One signed install as Meta sends it; its HTTP status (`None`: no answer).
async fn post_install(http: &reqwest::Client, url: &str, waba: &str, owner: &str) -> Option<u16> {
    install_request(http, url, waba, owner)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// One signed install as Meta sends it: a batch of one change, `waba_info` complete.
fn install_request(
    http: &reqwest::Client,
    url: &str,
    waba: &str,
    owner: &str,
) -> reqwest::RequestBuilder {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": owner,
            "time": time,
            "changes": [{
                "field": "account_update",
                "value": {
                    "event": "PARTNER_APP_INSTALLED",
                    "waba_info": {
                        "waba_id": waba,
                        "owner_business_id": owner,
                        "partner_app_id": "1061231232323117",
                    },
                },
            }],
        }],
    });
    let body = serde_json::to_vec(&body).expect("JSON");
    http.post(url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            wa_envelope::sign(APP_SECRET.as_bytes(), &body),
        )
        .body(body)
}

/// What [`Stack::probe_until_200`] sent.
pub struct Probed {
    /// Installs sent, the last one answered 200.
    pub sent: usize,
    /// The WABA of the one answered 200.
    pub acked: String,
    /// How long after the instant given it was answered.
    pub after: Duration,
}

/// One install sent by an [`InstallStream`] and the answer it got.
pub struct Answer {
    pub waba: String,
    /// `None`: no HTTP answer (connection refused or reset, timeout).
    pub status: Option<u16>,
    /// When the answer came.
    pub at: Instant,
}

/// A running stream of installs.
pub struct InstallStream {
    stop: CancellationToken,
    task: JoinHandle<Vec<Answer>>,
}

impl InstallStream {
    /// Stops sending and returns every install sent, in order.
    pub async fn stop(self) -> Sent {
        self.stop.cancel();
        Sent(self.task.await.expect("install stream task"))
    }
}

/// What an [`InstallStream`] sent.
pub struct Sent(pub Vec<Answer>);

impl Sent {
    /// The WABAs whose webhook was answered 200.
    pub fn acked(&self) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|s| s.status == Some(200))
            .map(|s| s.waba.clone())
            .collect()
    }

    /// How many got an answer other than 200, or none.
    pub fn refused(&self) -> usize {
        self.0.iter().filter(|s| s.status != Some(200)).count()
    }

    /// Statuses other than 200, 503 and no answer (none is expected).
    pub fn unexpected(&self) -> Vec<Option<u16>> {
        self.0
            .iter()
            .map(|s| s.status)
            .filter(|s| !matches!(s, Some(200 | 503) | None))
            .collect()
    }
}
