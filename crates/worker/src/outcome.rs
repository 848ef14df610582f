//! How applying one message ended: [`Applied`] (its effects are durable; the delivery is
//! acked) or a [`Failure`] (a delay tier, or the dead-letter queue).
//!
//! Owns only these two types and how store and Graph errors become a failure. It never
//! touches the broker, Redis or the Graph API itself, and imports nothing else of the crate.

use std::time::Duration;

use wa_graph::GraphError;
use wa_store::StoreError;

/// A message whose effects are all durable: the delivery is acked, its dedupe key marked done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Something changed.
    Changed,
    /// Nothing to change: the state already reflects this message or a newer one (or, for
    /// an effect, the tenant moved on while it ran).
    Stale,
    /// Not ours: an install or uninstall naming another app (`WA_APP_ID`).
    OtherApp,
}

/// A message that could not be applied now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A transient failure: try again later (a delay tier), at the earliest after `after`.
    Retry {
        /// Token-free description of the failure (the `x-wa-last-error` header).
        error: String,
        /// The server's requested pause, when it gave one.
        after: Option<Duration>,
    },
    /// Someone else is working on the same thing (another worker checks the tenant): wait in
    /// the first delay tier, without counting an attempt.
    Busy {
        /// Token-free description (the `x-wa-last-error` header).
        error: String,
    },
    /// Cannot succeed as it is: to the dead-letter queue.
    DeadLetter {
        /// Why, for the `x-wa-reason` header and operators.
        reason: String,
    },
}

impl Failure {
    /// To the dead-letter queue, with `reason`.
    pub fn dead_letter(reason: impl Into<String>) -> Self {
        Self::DeadLetter {
            reason: reason.into(),
        }
    }

    /// A Graph API error: transient ones are retried (after the pause Graph asked for),
    /// others go to the dead-letter queue.
    pub fn graph(e: &GraphError) -> Self {
        if e.is_transient() {
            Self::Retry {
                error: e.summary(),
                after: e.retry_after(),
            }
        } else {
            Self::dead_letter(format!("graph: {}", e.summary()))
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Self::Retry {
                error: format!("redis: {e}"),
                after: None,
            }
        } else {
            Self::dead_letter(format!("store: {e}"))
        }
    }
}
