//! The failure suite's own RabbitMQ node (`WA_FAILURES_RABBITMQ_NODE`, default
//! `wa-failures@localhost`, AMQP at `WA_FAILURES_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5673/%2f`): started by `scripts/failures-rabbitmq.sh` when it
//! is not running, and stopped and started by the broker test with
//! `rabbitmqctl -n NODE stop_app|start_app`, or put under a memory alarm by the blocked-broker
//! test (`set_vm_memory_high_watermark`); and a node of the 3-node cluster stopped and started
//! the same way by the node-loss test. The machine's shared RabbitMQ (`AMQP_URL`) is never
//! used here, so the other test suites do not see these outages.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The node's name, for `rabbitmqctl -n` and `rabbitmq-diagnostics -n`.
pub fn node() -> String {
    std::env::var("WA_FAILURES_RABBITMQ_NODE").unwrap_or_else(|_| "wa-failures@localhost".into())
}

/// Where the stack under test reaches the node.
pub fn amqp_url() -> String {
    std::env::var("WA_FAILURES_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5673/%2f".into())
}

/// Starts the node when it is not running (once per test run), and waits until it takes
/// connections.
///
/// # Panics
///
/// When the script fails.
pub fn ensure_node() {
    static STARTED: OnceLock<bool> = OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/failures-rabbitmq.sh");
        Command::new(script)
            .env("WA_FAILURES_RABBITMQ_NODE", node())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        started,
        "the failure tests' RabbitMQ node {} is not running and scripts/failures-rabbitmq.sh \
         could not start it",
        node()
    );
}

fn rabbitmqctl(node: &str, command: &str) -> bool {
    rabbitmqctl_on(node, &[command])
}

fn rabbitmqctl_args(args: &[&str]) -> bool {
    rabbitmqctl_on(&node(), args)
}

fn rabbitmqctl_on(node: &str, args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(["-n", node])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Blocks until `rabbitmq-diagnostics -n NODE -q ping` succeeds (at most `within`).
fn wait_for_ping(node: &str, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        let ok = Command::new("rabbitmq-diagnostics")
            .args(["-n", node, "-q", "ping"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A node's application stopped by a test (the suite's node, or one of the cluster's).
/// Dropping it, even during a panic, starts it again and waits until it answers: the next
/// test needs it.
pub struct BrokerStopped {
    node: String,
    restored: bool,
}

impl BrokerStopped {
    /// `rabbitmqctl -n NODE stop_app` on the suite's node.
    ///
    /// # Panics
    ///
    /// When it fails.
    pub fn stop() -> Self {
        Self::stop_node(&node())
    }

    /// `rabbitmqctl -n NODE stop_app` on `node`.
    ///
    /// # Panics
    ///
    /// When it fails.
    pub fn stop_node(node: &str) -> Self {
        let guard = Self {
            node: node.to_owned(),
            restored: false,
        };
        assert!(
            rabbitmqctl(node, "stop_app"),
            "rabbitmqctl -n {node} stop_app failed"
        );
        guard
    }

    /// `start_app`, then waits for `ping`; the instant the broker is back.
    ///
    /// # Panics
    ///
    /// When `start_app` fails or the node does not answer within a minute.
    pub fn restore(&mut self) -> Instant {
        self.restored = true;
        let node = &self.node;
        assert!(
            rabbitmqctl(node, "start_app"),
            "rabbitmqctl -n {node} start_app failed"
        );
        let back = Instant::now();
        assert!(
            wait_for_ping(node, Duration::from_secs(60)),
            "RabbitMQ node {node} does not answer ping after start_app"
        );
        back
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        if !self.restored {
            let started = rabbitmqctl(&self.node, "start_app");
            let pinged = wait_for_ping(&self.node, Duration::from_secs(60));
            eprintln!(
                "broker {} restored after a failure: start_app {started}, ping {pinged}",
                self.node
            );
        }
    }
}

/// The node's memory high watermark as RabbitMQ ships it, restored after an alarm.
const DEFAULT_WATERMARK: &str = "0.4";

/// A memory alarm raised by a test (`set_vm_memory_high_watermark 0.00001`: every
/// publishing connection is blocked). Dropping it, even during a panic, puts the default
/// watermark back: the next test needs a broker that takes messages.
pub struct BrokerAlarm {
    cleared: bool,
}

impl BrokerAlarm {
    /// Raises the alarm.
    ///
    /// # Panics
    ///
    /// When `rabbitmqctl` fails.
    pub fn raise() -> Self {
        let guard = Self { cleared: false };
        assert!(
            rabbitmqctl_args(&["set_vm_memory_high_watermark", "0.00001"]),
            "rabbitmqctl -n {} set_vm_memory_high_watermark failed",
            node()
        );
        guard
    }

    /// Clears the alarm (the default watermark again); the instant it was cleared.
    ///
    /// # Panics
    ///
    /// When `rabbitmqctl` fails.
    pub fn clear(&mut self) -> Instant {
        self.cleared = true;
        assert!(
            rabbitmqctl_args(&["set_vm_memory_high_watermark", DEFAULT_WATERMARK]),
            "rabbitmqctl -n {} set_vm_memory_high_watermark {DEFAULT_WATERMARK} failed",
            node()
        );
        Instant::now()
    }
}

impl Drop for BrokerAlarm {
    fn drop(&mut self) {
        if !self.cleared {
            let cleared = rabbitmqctl_args(&["set_vm_memory_high_watermark", DEFAULT_WATERMARK]);
            eprintln!("broker alarm cleared after a failure: {cleared}");
        }
    }
}
