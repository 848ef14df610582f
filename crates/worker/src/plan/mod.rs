//! What each kind of message asks the worker to do, decided without I/O.
//!
//! One module per message kind: [`account_update`] (Meta's `account_update` webhooks),
//! [`integration`] (the `application` business integration webhooks), [`session`]
//! (Embedded Signup session events) and [`check`] (tenant checks). Each turns a message into a plan, or a [`Rejected`]
//! reason for the dead-letter queue; every rule about reading the payloads lives there, so it
//! is tested with plain unit tests. Nothing here touches the broker, Redis or the Graph API,
//! and nothing here imports another module of the crate.

pub mod account_update;
pub mod check;
pub mod integration;
pub mod session;

use serde_json::Value;
use wa_ids::IdError;

/// A message that cannot be applied safely, and why: it goes to the dead-letter queue with
/// this reason. Never guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// `value[key]` as text: a non-empty string, or a number (Meta sends ids either way).
fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `value` (read at `at`) parsed as an id, or why the message is rejected: a malformed id is
/// a malformed message.
fn id<T: TryFrom<String, Error = IdError>>(value: String, at: &str) -> Result<T, Rejected> {
    T::try_from(value).map_err(|e| Rejected(format!("{at}: {e}")))
}

/// [`id`] of an optional field.
fn optional_id<T: TryFrom<String, Error = IdError>>(
    value: Option<String>,
    at: &str,
) -> Result<Option<T>, Rejected> {
    value.map(|v| id(v, at)).transpose()
}
