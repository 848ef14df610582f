//! The receivers `wa-bench ingress` puts under load: the wa-onboard ingress (in this process,
//! or a `wa-onboard ingress` child that reports its own port), or any external receiver given
//! as a command line.
//!
//! An external receiver is started as `sh -c COMMAND` in a process group of its own, with the
//! same contract in its environment as the ingress gets: `PORT` and `WA_LISTEN` (where to
//! listen), `AMQP_URL`, `WA_APP_SECRET`, `WA_VERIFY_TOKEN`, `WA_AMQP_PREFIX` (a fresh prefix
//! per phase, for receivers that take one). It is ready once a signed webhook is answered
//! `200`; it is stopped with `SIGTERM` to its whole group (then `SIGKILL`). Its CPU and peak
//! RSS are those of its whole process tree.
//!
//! This module only starts and stops receivers; the load is `load.rs`'s.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wa_ingress::IngressConfig;
use wa_testkit::Listening;

use crate::{CHILD_START, http1};

/// The app secret every receiver is given, and every request signed with.
pub const SECRET: &str = "bench-app-secret";

/// What to put under load.
#[derive(Clone, Debug)]
pub enum Kind {
    /// `wa_ingress::run` in this process (no separate CPU or RSS figure).
    InProcess,
    /// `BIN ingress`, a wa-onboard binary.
    Ingress(PathBuf),
    /// `sh -c COMMAND`.
    External(String),
}

/// A receiver named for the report.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Its name in the report.
    pub name: String,
    /// How to start it.
    pub kind: Kind,
}

/// Parses `NAME=COMMAND` (an external receiver).
pub fn parse_external(s: &str) -> Result<Spec, String> {
    let (name, command) = s
        .split_once('=')
        .filter(|(n, c)| !n.is_empty() && !c.trim().is_empty())
        .ok_or_else(|| format!("expected NAME=COMMAND, got `{s}`"))?;
    Ok(Spec {
        name: name.to_owned(),
        kind: Kind::External(command.to_owned()),
    })
}

/// A started receiver.
pub struct Running {
    /// Where it accepts webhooks.
    pub addr: SocketAddr,
    /// The root of its process tree, when it is a process of its own.
    pub pid: Option<u32>,
    how: How,
}

enum How {
    InProcess(
        CancellationToken,
        tokio::task::JoinHandle<Result<(), wa_ingress::IngressError>>,
    ),
    Ingress(Box<Listening>),
    External(tokio::process::Child),
}

/// What a receiver needs to know of the run.
pub struct Env<'a> {
    /// AMQP URL.
    pub amqp_url: &'a str,
    /// Topology prefix of this phase.
    pub prefix: &'a str,
    /// `WA_PUBLISH_CHANNELS`, when the run sets it.
    pub channels: Option<usize>,
}

/// Starts `spec` and waits until it answers a signed webhook with `200`.
pub async fn start(spec: &Spec, env: &Env<'_>, probe: &[u8]) -> anyhow::Result<Running> {
    let running = match &spec.kind {
        Kind::InProcess => {
            let shutdown = CancellationToken::new();
            let mut broker =
                wa_broker::BrokerConfig::new(env.amqp_url, wa_broker::Topology::new(env.prefix))?;
            broker.channels = env
                .channels
                .unwrap_or(usize::from(wa_ingress::PUBLISH_CHANNELS));
            let config = IngressConfig::new(
                vec![SecretString::from(SECRET.to_owned())],
                SecretString::from("bench".to_owned()),
                broker,
            );
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let task = tokio::spawn(wa_ingress::run(listener, config, shutdown.clone()));
            Running {
                addr,
                pid: None,
                how: How::InProcess(shutdown, task),
            }
        }
        Kind::Ingress(bin) => {
            let mut cmd = tokio::process::Command::new(bin);
            cmd.arg("ingress")
                .env("WA_LISTEN", "127.0.0.1:0")
                // Only the `listening` line, which says where it accepts webhooks.
                .env("RUST_LOG", "warn,wa_ingress=info");
            contract_env(cmd.as_std_mut(), env);
            // Bound by the child itself on port 0: no port picked here and hoped free.
            let child = Listening::spawn(cmd, CHILD_START).await;
            Running {
                addr: child.addr,
                pid: child.id(),
                how: How::Ingress(Box::new(child)),
            }
        }
        Kind::External(command) => {
            // The command cannot report a port: one is picked free here.
            let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c")
                .arg(command)
                .env("PORT", addr.port().to_string())
                .env("WA_LISTEN", addr.to_string())
                // Errors only: a refused probe while it connects is expected.
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .process_group(0);
            contract_env(&mut cmd, env);
            let mut cmd = tokio::process::Command::from(cmd);
            cmd.kill_on_drop(true);
            let child = cmd.spawn().with_context(|| format!("start `{command}`"))?;
            Running {
                addr,
                pid: child.id(),
                how: How::External(child),
            }
        }
    };
    wait_accepting(running.addr, probe)
        .await
        .with_context(|| format!("{} never answered a signed webhook with 200", spec.name))?;
    Ok(running)
}

fn contract_env(cmd: &mut std::process::Command, env: &Env<'_>) {
    cmd.env("WA_APP_SECRET", SECRET)
        .env("WA_VERIFY_TOKEN", "bench")
        .env("AMQP_URL", env.amqp_url)
        .env("WA_AMQP_PREFIX", env.prefix);
    if let Some(channels) = env.channels {
        cmd.env("WA_PUBLISH_CHANNELS", channels.to_string());
    }
}

/// Polls with `probe` (a signed webhook) until it is answered `200`, for up to 30 s.
async fn wait_accepting(addr: SocketAddr, probe: &[u8]) -> anyhow::Result<()> {
    let deadline = Instant::now() + CHILD_START;
    loop {
        let ok = match http1::Client::connect(addr).await {
            Ok(mut c) => c.round_trip(probe).await.is_ok_and(|s| s == 200),
            Err(_) => false,
        };
        if ok {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not ready within {CHILD_START:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Running {
    /// Stops the receiver (its whole process group, for an external one).
    pub async fn stop(self) -> anyhow::Result<()> {
        match self.how {
            How::InProcess(shutdown, task) => {
                shutdown.cancel();
                task.await.context("ingress task")??;
            }
            How::Ingress(mut child) => {
                child.kill().await;
            }
            How::External(mut child) => {
                if let Some(pid) = child.id() {
                    signal_group(pid, "TERM");
                    if tokio::time::timeout(Duration::from_secs(5), child.wait())
                        .await
                        .is_err()
                    {
                        signal_group(pid, "KILL");
                    }
                }
                let _ = child.wait().await;
            }
        }
        Ok(())
    }
}

/// Sends `signal` to the process group `pgid` (the external receiver and whatever it forked).
fn signal_group(pgid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_receiver_is_name_equals_command() {
        let spec =
            parse_external("node=cd peer && node server.js").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, "node");
        assert!(matches!(spec.kind, Kind::External(c) if c == "cd peer && node server.js"));
        assert!(parse_external("node").is_err());
        assert!(parse_external("=x").is_err());
        assert!(parse_external("n= ").is_err());
    }
}
