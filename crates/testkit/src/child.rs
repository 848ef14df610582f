//! Child processes that serve on port 0 and say where: [`Listening`] starts a command with
//! stderr piped, waits (with a deadline) for its one JSON `listening` event (`fields.role`,
//! `fields.addr`), and from then on keeps reading stderr so the child never blocks on a full
//! pipe, remembering the last lines for a failure message. [`RefusedAddr`]: an address
//! reserved by a bound socket that never listens, so every connection to it is refused.
//!
//! Knows the shape of the `listening` event only (every serving role of wa-onboard logs it
//! once, as JSON when stderr is not a terminal); nothing of what the child does.

use std::{
    collections::VecDeque,
    ffi::OsStr,
    fmt::Write as _,
    net::SocketAddr,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpSocket,
    process::{Child, ChildStderr, Command},
    sync::oneshot,
    task::JoinHandle,
};

/// How many stderr lines a failure message quotes.
const TAIL_LINES: usize = 40;

/// The last stderr lines of a child.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running child that reported the address it listens on. Killed when dropped.
pub struct Listening {
    /// `fields.role` of its `listening` event.
    pub role: String,
    /// `fields.addr` of its `listening` event: where it accepts connections.
    pub addr: SocketAddr,
    child: Child,
    tail: Tail,
    drain: JoinHandle<()>,
}

impl Listening {
    /// Starts `cmd` with stderr piped and stdout discarded, and returns once it logged its
    /// `listening` event. `RUST_LOG` is set to `info` unless `cmd` sets it (the event is at
    /// info). With `TEST_LOG` in the environment, the child's stderr is copied to the test's.
    ///
    /// # Panics
    ///
    /// When the command cannot be started, exits first, or says nothing within `within`;
    /// the message quotes its last stderr lines.
    pub async fn spawn(mut cmd: Command, within: Duration) -> Self {
        let program = describe(&cmd);
        if !cmd
            .as_std()
            .get_envs()
            .any(|(k, v)| k == OsStr::new("RUST_LOG") && v.is_some())
        {
            cmd.env("RUST_LOG", "info");
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Tail::default();
        let (found, listening) = oneshot::channel();
        let drain = tokio::spawn(drain(stderr, Arc::clone(&tail), found));
        let (role, addr) = match tokio::time::timeout(within, listening).await {
            Ok(Ok(found)) => found,
            Ok(Err(_closed)) => {
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                panic!(
                    "{program} closed stderr before logging `listening` (exit: {status:?})\n{}",
                    render(&tail)
                );
            }
            Err(_elapsed) => panic!(
                "{program} logged no `listening` event within {within:?} (is RUST_LOG hiding \
                 info?)\n{}",
                render(&tail)
            ),
        };
        Self {
            role,
            addr,
            child,
            tail,
            drain,
        }
    }

    /// `http://{addr}`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its last stderr lines, one per line, for a failure message.
    pub fn tail(&self) -> String {
        render(&self.tail)
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// How it exited, if it did.
    ///
    /// # Panics
    ///
    /// When its status cannot be read.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Panics, quoting its last stderr lines, if it exited.
    ///
    /// # Panics
    ///
    /// When it exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} on {} exited early with {status}\n{}",
                self.role,
                self.addr,
                self.tail()
            );
        }
    }

    /// SIGKILL, and reaps the process.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGKILL, without waiting (for a `Drop`).
    pub fn start_kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGTERM, and waits for it to exit; `None` when it is still running after `within`
    /// (it is then killed on drop).
    ///
    /// # Panics
    ///
    /// When the signal cannot be sent.
    pub async fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        if let Some(pid) = self.child.id() {
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("run kill");
            assert!(sent.success(), "kill -TERM {pid} failed");
        }
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|status| status.expect("wait for the child"))
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        self.drain.abort();
    }
}

/// Reads `stderr` line by line until it closes: each line kept in `tail`; the first
/// `listening` event's role and address sent on `found`.
async fn drain(stderr: ChildStderr, tail: Tail, found: oneshot::Sender<(String, SocketAddr)>) {
    let echo = std::env::var_os("TEST_LOG").is_some();
    let mut found = Some(found);
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
        if echo {
            #[allow(clippy::print_stderr, reason = "TEST_LOG asks for the child's log")]
            {
                eprintln!("{line}");
            }
        }
        if let Some(listening) = found.as_ref().and(listening(&line)) {
            let _ = found.take().map(|tx| tx.send(listening));
        }
        let mut kept = tail.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == TAIL_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

/// `(role, addr)` of a JSON `listening` event.
fn listening(line: &str) -> Option<(String, SocketAddr)> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    let addr = fields.get("addr")?.as_str()?.parse().ok()?;
    let role = fields.get("role")?.as_str()?.to_owned();
    Some((role, addr))
}

fn render(tail: &Tail) -> String {
    let kept = tail.lock().unwrap_or_else(|p| p.into_inner());
    let mut text = format!("--- last {} stderr lines ---\n", kept.len());
    for line in kept.iter() {
        let _ = writeln!(text, "{line}");
    }
    text
}

/// The program and its arguments, for messages.
fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    let mut text = std.get_program().to_string_lossy().into_owned();
    for arg in std.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// An address on 127.0.0.1 where every connection is refused, for as long as this value
/// lives: its port is bound (so nobody else gets it) but never listened on.
pub struct RefusedAddr {
    /// The address.
    pub addr: SocketAddr,
    _socket: TcpSocket,
}

impl RefusedAddr {
    /// Binds `127.0.0.1:0` without listening.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub fn bind() -> Self {
        let socket = TcpSocket::new_v4().expect("TCP socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind 127.0.0.1:0");
        let addr = socket.local_addr().expect("local addr");
        Self {
            addr,
            _socket: socket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_event_and_nothing_else() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"listening","role":"worker","addr":"127.0.0.1:4321"},"target":"x"}"#;
        assert_eq!(
            listening(line),
            Some(("worker".to_owned(), "127.0.0.1:4321".parse().expect("addr")))
        );
        assert_eq!(listening(r#"{"fields":{"message":"started"}}"#), None);
        assert_eq!(listening("listening on 127.0.0.1:1"), None);
    }

    #[tokio::test]
    async fn a_refused_addr_refuses() {
        let refused = RefusedAddr::bind();
        let err = tokio::net::TcpStream::connect(refused.addr)
            .await
            .expect_err("nobody listens");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    /// `sh -c SCRIPT`.
    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[tokio::test]
    async fn returns_the_reported_address_keeps_draining_and_kills_on_drop() {
        let script = r#"echo 'not JSON' >&2
echo '{"fields":{"message":"listening","role":"graph-sim","addr":"127.0.0.1:9"}}' >&2
echo after >&2
exec sleep 30"#;
        let mut child = Listening::spawn(sh(script), Duration::from_secs(10)).await;

        assert_eq!(child.role, "graph-sim");
        assert_eq!(child.base(), "http://127.0.0.1:9");
        crate::eventually(Duration::from_secs(5), "the line after", || {
            std::future::ready(child.tail().contains("after").then_some(()))
        })
        .await;
        assert!(child.tail().contains("not JSON"), "{}", child.tail());
        child.assert_running();
        let pid = child.id().expect("running");
        drop(child);
        crate::eventually(Duration::from_secs(5), "the child killed", || {
            let alive = std::process::Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            std::future::ready((!alive).then_some(()))
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "closed stderr before logging `listening`")]
    async fn a_child_that_exits_first_fails_with_its_last_lines() {
        Listening::spawn(sh("echo 'bad config' >&2; exit 2"), Duration::from_secs(10)).await;
    }

    #[tokio::test]
    async fn terminate_sends_sigterm_and_waits() {
        let script = r#"trap 'exit 0' TERM
echo '{"fields":{"message":"listening","role":"r","addr":"127.0.0.1:9"}}' >&2
while true; do sleep 0.1; done"#;
        let mut child = Listening::spawn(sh(script), Duration::from_secs(10)).await;

        let status = child.terminate(Duration::from_secs(10)).await;

        assert!(status.is_some_and(|s| s.success()), "{status:?}");
    }
}
