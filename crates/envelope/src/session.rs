//! Embedded Signup session events: what the partner's backend forwards from the browser.
//!
//! When a customer finishes, abandons or hits an error in Embedded Signup, Meta's popup sends
//! the page that launched it a `postMessage`; the partner's page hands it to the partner's own
//! backend, which POSTs it to the ingress (`/v1/signup-events`). The body is that message:
//!
//! ```json
//! {"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH_GRANT_ONLY_API_ACCESS",
//!  "data": {"phone_number_id": "…", "waba_id": "…", "business_id": "…"}}
//! ```
//!
//! Validation ([`SessionEvent::parse`]), each rule answering `400` with its reason:
//!
//! - an object with `type` = `WA_EMBEDDED_SIGNUP`, `event` = 1 to [`MAX_EVENT_LEN`] of
//!   `[A-Z_]`, and `data` an object;
//! - `FINISH`, `FINISH_ONLY_WABA`, `FINISH_GRANT_ONLY_API_ACCESS` ([`FINISH_EVENTS`]): a
//!   `data.waba_id`; `phone_number_id` and `business_id`, when present, are ids too; an
//!   optional `data.waba_ids` array lists every WABA of a multi-WABA signup;
//! - an error report (any other event whose `data` has `error_message`, as Meta sends with
//!   `CANCEL`): `error_message`, `error_code` or the older `error_id`, and `session_id`;
//! - `CANCEL` otherwise (the customer abandoned the flow): `data.current_step`;
//! - any other event name is accepted and kept as it is ([`SessionKind::Other`]).
//!
//! Ids are parsed into their `wa-ids` types here, once: `waba_id`, `waba_ids[]`,
//! `phone_number_id` and `business_id` are Meta ids (1 to 32 ASCII digits), `session_id`
//! and `launch_id` are session ids (1 to 128 of `[A-Za-z0-9_.:-]`). A top-level `launch_id` is
//! optional: the partner's page sets one random id per launch of the flow, which groups a
//! launch's events and keeps apart two customers who abandon at the same step (their bodies
//! would otherwise be identical, and identical bodies are one event: see below). Other
//! top-level fields are kept as they are.
//!
//! An accepted event becomes one [`ChangeMessage`] (object [`OBJECT`], field [`FIELD`], so
//! routing key [`ROUTING_KEY`]) whose `value` is the whole body, whose `entry_time` is `null`
//! (the browser's clock orders nothing) and whose id is [`canonical_sha256`] of the body: a
//! forwarded event re-sent by the partner's backend after a timeout is the same message, and
//! the worker applies it once.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use wa_ids::{
    BusinessId, DedupeKey, IdError, MAX_SESSION_ID_LEN, PhoneNumberId, SessionId, WabaId,
};

use crate::{ChangeMessage, canonical, change::sha256_key};

/// The `object` of a session event's message.
pub const OBJECT: &str = "embedded_signup";
/// The `field` of a session event's message.
pub const FIELD: &str = "session";
/// `{OBJECT}.{FIELD}`: the routing key session events are published with.
pub const ROUTING_KEY: &str = "embedded_signup.session";
/// The `type` every Embedded Signup message carries.
pub const TYPE: &str = "WA_EMBEDDED_SIGNUP";
/// The largest body accepted (the events Meta documents are well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest event name accepted.
pub const MAX_EVENT_LEN: usize = 64;
/// The longest `current_step` or error code accepted.
pub const MAX_LABEL_LEN: usize = 64;
/// The longest `error_message` accepted.
pub const MAX_MESSAGE_LEN: usize = 2048;
/// The most `waba_ids` one event may list.
pub const MAX_WABA_IDS: usize = 32;
/// The events that mean "the customer finished the flow".
pub const FINISH_EVENTS: [&str; 3] = ["FINISH", "FINISH_ONLY_WABA", "FINISH_GRANT_ONLY_API_ACCESS"];

/// Why a body is not a session event. The message is the `400` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The body is not JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not a session event as documented; says which rule failed.
    #[error("{0}")]
    Invalid(String),
}

/// What a session event says, as far as wa-onboard acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    /// One of [`FINISH_EVENTS`].
    Finish {
        /// `data.waba_id`.
        waba_id: WabaId,
        /// `data.phone_number_id` (`FINISH_ONLY_WABA` has none).
        phone_number_id: Option<PhoneNumberId>,
        /// `data.business_id`: kept in the session log only (browser data never names a
        /// tenant's owner).
        business_id: Option<BusinessId>,
        /// `data.waba_ids`, without `waba_id` itself: the other WABAs of a multi-WABA signup.
        other_waba_ids: Vec<WabaId>,
    },
    /// `CANCEL` with `data.current_step`: the customer abandoned the flow there.
    Cancel {
        /// `data.current_step`.
        current_step: String,
    },
    /// An error the customer saw (`data.error_message`).
    Error {
        /// `data.error_code`, else `data.error_id`, as text.
        code: String,
        /// `data.session_id`: Meta's id for the session, to quote to Meta's support.
        session_id: SessionId,
    },
    /// An event this code does not act on; kept in the session log and counted.
    Other,
}

/// A validated session event.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent {
    /// `event`, e.g. `FINISH` or `CANCEL`.
    pub event: String,
    /// What it says.
    pub kind: SessionKind,
    /// The top-level `launch_id`, when the partner's page set one.
    pub launch_id: Option<SessionId>,
    /// The whole body, as received.
    pub value: Value,
}

fn invalid(reason: impl Into<String>) -> SessionError {
    SessionError::Invalid(reason.into())
}

fn charset_ok(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || extra.contains(&b))
}

/// `value` parsed as an id of type `T`, the refusal naming where it was (`data.waba_id`).
fn id<T: TryFrom<String, Error = IdError>>(value: &Value, at: &str) -> Result<T, SessionError> {
    match value {
        Value::String(s) => T::try_from(s.clone()).map_err(|e| invalid(format!("{at}: {e}"))),
        _ => Err(invalid(format!("{at} must be a string"))),
    }
}

/// An id field of `data`: absent is `None`; present, it must pass its rule.
fn id_field<T: TryFrom<String, Error = IdError>>(
    data: &Map<String, Value>,
    name: &str,
) -> Result<Option<T>, SessionError> {
    match data.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => id(value, &format!("data.{name}")).map(Some),
    }
}

/// A short label (`current_step`, an error code): a string, or an integer for codes.
fn label(value: Option<&Value>, integers: bool) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.clone(),
        Value::Number(n) if integers && (n.is_i64() || n.is_u64()) => n.to_string(),
        _ => return None,
    };
    charset_ok(&text, MAX_LABEL_LEN, b".").then_some(text)
}

/// Lowercase hex SHA-256 of the canonical JSON of `value` (keys sorted at every depth, no
/// white space): the same for the same content however it was written.
pub fn canonical_sha256(value: &Value) -> String {
    let mut bytes = Vec::with_capacity(256);
    canonical::write(value, &mut bytes);
    hex::encode(Sha256::digest(&bytes))
}

impl SessionEvent {
    /// Parses and validates a request body (see the module documentation for the rules).
    ///
    /// # Errors
    ///
    /// [`SessionError`] saying which rule the body breaks.
    pub fn parse(body: &[u8]) -> Result<Self, SessionError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| SessionError::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// Validates an already parsed body (the worker re-checks what it consumes).
    ///
    /// # Errors
    ///
    /// [`SessionError::Invalid`] saying which rule the value breaks.
    pub fn from_value(value: Value) -> Result<Self, SessionError> {
        let Value::Object(top) = &value else {
            return Err(invalid("body must be a JSON object"));
        };
        match top.get("type") {
            Some(Value::String(t)) if t == TYPE => {}
            _ => return Err(invalid(format!("`type` must be \"{TYPE}\""))),
        }
        let event = match top.get("event") {
            Some(Value::String(e))
                if !e.is_empty()
                    && e.len() <= MAX_EVENT_LEN
                    && e.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
            {
                e.clone()
            }
            _ => {
                return Err(invalid(format!(
                    "`event` must be a string of 1 to {MAX_EVENT_LEN} of [A-Z_]"
                )));
            }
        };
        let Some(Value::Object(data)) = top.get("data") else {
            return Err(invalid("`data` must be an object"));
        };
        let launch_id = match top.get("launch_id") {
            None | Some(Value::Null) => None,
            Some(value) => Some(id(value, "`launch_id`")?),
        };
        let kind = if FINISH_EVENTS.contains(&event.as_str()) {
            finish(&event, data)?
        } else if data.contains_key("error_message") {
            error(data)?
        } else if event == "CANCEL" {
            let Some(current_step) = label(data.get("current_step"), false) else {
                return Err(invalid(format!(
                    "CANCEL needs data.current_step (1 to {MAX_LABEL_LEN} of [A-Za-z0-9_.-]) \
                     or an error report (error_message, error_code or error_id, session_id)"
                )));
            };
            SessionKind::Cancel { current_step }
        } else {
            SessionKind::Other
        };
        Ok(Self {
            event,
            kind,
            launch_id,
            value,
        })
    }

    /// The message id: [`canonical_sha256`] of the whole body.
    pub fn dedupe_key(&self) -> DedupeKey {
        sha256_key(canonical_sha256(&self.value))
    }

    /// The ids this event can be looked up by: `launch_id`, then Meta's `data.session_id`
    /// (for an error report), without repeats.
    pub fn session_ids(&self) -> Vec<SessionId> {
        let mut ids = Vec::with_capacity(2);
        if let Some(launch) = &self.launch_id {
            ids.push(launch.clone());
        }
        if let SessionKind::Error { session_id, .. } = &self.kind
            && !ids.contains(session_id)
        {
            ids.push(session_id.clone());
        }
        ids
    }

    /// The broker message for this event, received at `received_at` (unix seconds).
    pub fn into_change(self, received_at: i64) -> ChangeMessage {
        ChangeMessage {
            id: self.dedupe_key(),
            object: OBJECT.to_owned(),
            entry_id: self
                .session_ids()
                .into_iter()
                .next()
                .map(SessionId::into_string)
                .unwrap_or_default(),
            entry_time: None,
            field: FIELD.to_owned(),
            value: self.value,
            received_at,
        }
    }
}

fn finish(event: &str, data: &Map<String, Value>) -> Result<SessionKind, SessionError> {
    let Some(waba_id) = id_field::<WabaId>(data, "waba_id")? else {
        return Err(invalid(format!("{event} needs data.waba_id")));
    };
    let phone_number_id = id_field(data, "phone_number_id")?;
    let business_id = id_field(data, "business_id")?;
    let mut other_waba_ids = Vec::new();
    match data.get("waba_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) if ids.len() <= MAX_WABA_IDS => {
            for value in ids {
                let other: WabaId = id(value, "data.waba_ids[]")?;
                if other != waba_id && !other_waba_ids.contains(&other) {
                    other_waba_ids.push(other);
                }
            }
        }
        Some(_) => {
            return Err(invalid(format!(
                "data.waba_ids must be an array of at most {MAX_WABA_IDS} ids"
            )));
        }
    }
    Ok(SessionKind::Finish {
        waba_id,
        phone_number_id,
        business_id,
        other_waba_ids,
    })
}

fn error(data: &Map<String, Value>) -> Result<SessionKind, SessionError> {
    match data.get("error_message") {
        Some(Value::String(m)) if !m.is_empty() && m.len() <= MAX_MESSAGE_LEN => {}
        _ => {
            return Err(invalid(format!(
                "data.error_message must be a string of 1 to {MAX_MESSAGE_LEN} bytes"
            )));
        }
    }
    let code = match (data.get("error_code"), data.get("error_id")) {
        (Some(c), _) if !c.is_null() => label(Some(c), true),
        (_, Some(id)) => label(Some(id), true),
        (_, None) => None,
    };
    let Some(code) = code else {
        return Err(invalid(format!(
            "an error report needs data.error_code or data.error_id (an integer, or 1 to \
             {MAX_LABEL_LEN} of [A-Za-z0-9_.-])"
        )));
    };
    let Some(session_id) = id_field(data, "session_id")? else {
        return Err(invalid(format!(
            "an error report needs data.session_id (1 to {MAX_SESSION_ID_LEN} of [A-Za-z0-9_.:-])"
        )));
    };
    Ok(SessionKind::Error { code, session_id })
}

#[cfg(test)]
mod tests;
