//! What the failure tests share, one concern per module, depending one way:
//!
//! - [`rabbitmq`]: the suite's own RabbitMQ node, started if needed, stopped and started by
//!   the broker test; never the machine's shared broker;
//! - [`stack`]: graph-sim, the ingress and the workers as child processes of the real binary
//!   (each on port 0, its address read from its `listening` event), started and stopped;
//! - [`traffic`]: signed installs sent to the ingress, and the answer each one got;
//! - [`observation`]: what Redis, RabbitMQ, the workers' metrics and graph-sim's
//!   `/_sim/calls` say, once the run is quiet;
//! - [`verdict`]: nothing lost, nothing doubled, every repeated token fetch explained.
//!
//! `verdict` reads only what `observation` gathered; `observation` and `traffic` use the
//! `stack`; the `stack` uses `rabbitmq`.

pub use wa_testkit::redis_addr;

pub use self::{
    rabbitmq::{BrokerAlarm, BrokerStopped},
    stack::{Options, Stack},
};

mod observation;
mod rabbitmq;
mod stack;
mod traffic;
mod verdict;

/// The app secret every role of the stack shares (signatures, proofs, issued tokens).
const APP_SECRET: &str = "failure-test-app-secret";

/// Prints a test's figures as one `RELIABILITY:` line (quoted by docs/RELIABILITY.md; run
/// with `--nocapture` to see it when the test passes).
#[allow(clippy::print_stdout, reason = "the figures are the test's report")]
pub fn report(figures: &str) {
    println!("RELIABILITY: {figures}");
}
