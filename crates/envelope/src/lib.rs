//! What Meta sends, and what we make of it, without any I/O.
//!
//! This crate owns the shape of a webhook delivery from the moment its raw bytes arrive until
//! they become broker messages:
//!
//! - [`signature`]: `X-Hub-Signature-256` verification over the raw body, in constant time,
//!   against every configured app secret (rotation), and signing for tools and tests.
//! - [`change`]: parsing the `{"object", "entry": [...]}` envelope and splitting it into one
//!   [`ChangeMessage`] per `entry[].changes[]`, each with a dedupe key that stays the same when
//!   Meta re-delivers the change alone or inside another batch.
//! - [`session`]: Embedded Signup session events forwarded by the partner's backend, validated
//!   and turned into one [`ChangeMessage`] each, keyed by the hash of their canonical JSON.
//!
//! It never touches the network, the broker or the store, so every rule here is tested with
//! plain unit tests.

mod canonical;
pub mod change;
#[cfg(test)]
mod proptests;
pub mod session;
pub mod signature;

pub use change::{ChangeMessage, Envelope, Publishable, dedupe_key};
pub use signature::{SignatureError, sign, verify};

/// Why a signed body could not be turned into change messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The body is not JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object with a string `object` and an `entry` array.
    #[error("body is not an object with a string `object` and an `entry` array")]
    NotAnEnvelope,
    /// `object` cannot be used in a routing key.
    #[error("`{0}` is not a valid object name (1 to 100 of [A-Za-z0-9_-])")]
    BadName(String),
}
