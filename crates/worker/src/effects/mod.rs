//! Carrying out a plan, one module per message kind: tenant state in Redis (`wa-store`) and
//! the Graph API calls (`wa-graph`), each step idempotent so that a redelivery resumes where
//! a crashed attempt stopped.
//!
//! Each kind's effects answer `Result<Applied, Failure>`; what then happens to the delivery
//! (ack, delay tier, dead-letter queue) is the consumer's business, never decided here. The
//! plans come from `crate::plan`; nothing here reads a message body or touches the broker
//! except through `crate::events`, which publishes the tenant events of what changed.

pub mod account_update;
pub mod check;
mod emit;
mod installed;
pub mod integration;
pub mod session;
mod tie;
