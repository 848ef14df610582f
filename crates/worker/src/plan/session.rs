//! The plan for an Embedded Signup session event, as it arrives on `wa.signup_events`.
//!
//! The ingress publishes each event the partner's backend forwards (`/v1/signup-events`) with
//! routing key `embedded_signup.session`; the body is JSON with the message `id` (the event's
//! dedupe key), `object` `embedded_signup`, `field` `session`, the event itself as `value`
//! and `received_at` ([`wa_envelope::session::SessionEvent::into_change`] writes it). That is
//! a [`SessionMessage`]: the worker reads nothing else from it. It validates the event again
//! with the ingress's rules, so a replayed or hand-published message gets the same checks.
//! No I/O; what the plan changes is described in `crate::effects::session`.

use serde::Deserialize;
use serde_json::Value;
use wa_envelope::session::{FIELD, OBJECT, SessionEvent};
use wa_ids::DedupeKey;

use super::Rejected;

/// A message on `wa.signup_events`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionMessage {
    /// The message id: the event's dedupe key.
    pub id: DedupeKey,
    /// `embedded_signup`.
    pub object: String,
    /// `session`.
    pub field: String,
    /// The session event, as the partner's backend forwarded it.
    pub value: Value,
    /// When the ingress received it, unix seconds.
    pub received_at: i64,
}

impl SessionMessage {
    /// Parses a delivery's body.
    ///
    /// # Errors
    ///
    /// The JSON error when the body is not a session message at all.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// `value.event`, e.g. `FINISH` or `CANCEL`, when there is one.
    pub fn event(&self) -> Option<&str> {
        self.value.get("event").and_then(Value::as_str)
    }

    /// `{object}.{field}`: the routing key it was published with, and a replay's.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.object, self.field)
    }
}

/// What to do with one session event.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    /// The message id (the event's dedupe key).
    pub id: DedupeKey,
    /// When the ingress received it, unix seconds.
    pub received_at: i64,
    /// The validated event.
    pub event: SessionEvent,
}

/// Validates `message` into its plan.
///
/// # Errors
///
/// [`Rejected`] for a message that is not a session event, or whose event breaks a rule.
pub fn plan(message: &SessionMessage) -> Result<SessionPlan, Rejected> {
    if message.object != OBJECT {
        return Err(Rejected(format!(
            "object `{}` is not an Embedded Signup session event",
            message.object
        )));
    }
    if message.field != FIELD {
        return Err(Rejected(format!(
            "embedded_signup field `{}` is not handled by this worker",
            message.field
        )));
    }
    match SessionEvent::from_value(message.value.clone()) {
        Ok(event) => Ok(SessionPlan {
            id: message.id.clone(),
            received_at: message.received_at,
            event,
        }),
        Err(e) => Err(Rejected(format!("malformed session event: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wa_envelope::session::SessionKind;

    use super::*;

    fn message(value: Value) -> SessionMessage {
        SessionMessage {
            id: "ab".repeat(32).parse().unwrap(),
            object: "embedded_signup".into(),
            field: "session".into(),
            value,
            received_at: 7,
        }
    }

    #[test]
    fn a_session_event_is_planned_with_its_id_and_time() {
        let v = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH",
            "data": {"waba_id": "1", "phone_number_id": "2"}});
        let p = plan(&message(v)).expect("a session plan");
        assert_eq!(
            (p.id.as_str(), p.received_at),
            ("ab".repeat(32).as_str(), 7)
        );
        assert!(matches!(p.event.kind, SessionKind::Finish { .. }));
    }

    #[test]
    fn a_malformed_or_misrouted_session_event_is_rejected() {
        let Err(Rejected(reason)) = plan(&message(json!({"type": "X"}))) else {
            panic!("must be rejected")
        };
        assert!(reason.contains("`type`"), "{reason}");
        let mut other = message(json!({}));
        other.field = "other".into();
        assert!(plan(&other).is_err());
        let mut webhook = message(json!({}));
        webhook.object = "whatsapp_business_account".into();
        assert!(plan(&webhook).is_err());
    }

    #[test]
    fn what_the_ingress_publishes_parses_as_a_session_message() {
        let v = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "launch_id": "l-1",
            "data": {"current_step": "PHONE_NUMBER_SETUP"}});
        let change = SessionEvent::from_value(v.clone())
            .expect("a valid event")
            .into_change(42);
        let parsed = SessionMessage::parse(&change.to_json()).expect("parses");
        assert_eq!(parsed.id, change.id);
        assert_eq!(parsed.value, v);
        assert_eq!(parsed.received_at, 42);
        assert_eq!(parsed.event(), Some("CANCEL"));
        assert_eq!(parsed.routing_key(), wa_envelope::session::ROUTING_KEY);
        assert!(plan(&parsed).is_ok());
    }
}
