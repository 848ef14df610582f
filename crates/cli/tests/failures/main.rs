//! Failure tests: the real `wa-onboard` binaries (`ingress`, two `worker`s, `graph-sim`)
//! under a stream of signed `PARTNER_APP_INSTALLED` webhooks while one part of the system
//! fails, checking the promises of docs/REFERENCE.md ("Semantics the tests hold the project
//! to": "a 200 means every change is in a durable queue"; "one token fetch per install across
//! crashes and redeliveries") and printing the figures as one `RELIABILITY:` line per test
//! (docs/RELIABILITY.md).
//!
//! Serial and slow on purpose: every test is `#[ignore]`d so `cargo test --workspace` skips
//! them; scripts/test.sh runs
//!
//! ```sh
//! cargo test -p wa-onboard --test failures -- --ignored --test-threads=1 --nocapture
//! ```
//!
//! The stack runs on its own RabbitMQ node (`wa-failures@localhost`, AMQP on
//! 127.0.0.1:5673; `WA_FAILURES_RABBITMQ_NODE`, `WA_FAILURES_AMQP_URL`), started by
//! `scripts/failures-rabbitmq.sh` when needed, so stopping it leaves the machine's RabbitMQ
//! and the other suites alone (`rabbitmq-server`, `rabbitmqctl` and `rabbitmq-diagnostics`
//! on `PATH`). The node-loss test runs on the 3-node cluster of `scripts/rabbitmq-cluster.sh`
//! (`WA_CLUSTER_AMQP_URL`, `WA_CLUSTER_RABBITMQ_NODES`), started when needed. Needs Redis
//! (`REDIS_URL`) and the Redis Cluster of scripts/redis-cluster.sh. Each test runs under its
//! own exchange/queue prefix
//! and Redis key prefix and removes both, even after a panic.

/// A RabbitMQ memory alarm (connection.blocked) under load: not ready, 503 at once, nothing
/// lost once it clears.
mod broker_blocked;
/// RabbitMQ stopped (`rabbitmqctl -n NODE stop_app`) and started again while webhooks stream in.
mod broker_outage;
/// The RabbitMQ cluster node leading the work queue stopped under load, then started again.
mod cluster_node_loss;
/// The Graph API failing every call for a while, then back: the delay tiers carry installs.
mod graph_outage;
/// The suite's RabbitMQ node, the stack under test, the webhook stream, what the system says
/// afterwards, and the checks every test shares.
mod harness;
/// A Redis Cluster master killed under load: its replica promoted, the node restored.
mod redis_failover;
/// Redis unreachable (connections dropped, then frozen) under load.
mod redis_outage;
/// Workers killed with SIGKILL, again and again, while installs stream in.
mod worker_kill;
