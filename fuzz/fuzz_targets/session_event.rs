//! `SessionEvent::parse` (the `/v1/signup-events` validator) on arbitrary bytes.
//!
//! Never panics; what it accepts obeys the documented rules: `type` is `WA_EMBEDDED_SIGNUP`,
//! `event` is 1 to 64 of `[A-Z_]`, ids obey their `wa-ids` rule; the worker's re-check
//! (`from_value` on the same value) agrees; the message routes to `embedded_signup.session`
//! with the canonical hash of the body as its id; and the body, re-serialised as the ingress
//! publishes it, is still accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_envelope::session::{ROUTING_KEY, SessionEvent, SessionKind, TYPE, canonical_sha256};
use wa_ids::{BusinessId, PhoneNumberId, WabaId};

/// A Meta id as the envelope handed it out still passes the one rule of `wa-ids` (1 to 32
/// ASCII digits), whichever type it was parsed as.
fn is_meta_id(s: &str) -> bool {
    WabaId::parse(s).is_ok() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = SessionEvent::parse(data) else {
        return;
    };
    assert_eq!(event.value["type"].as_str(), Some(TYPE));
    assert!(!event.event.is_empty() && event.event.len() <= 64);
    assert!(
        event
            .event
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_')
    );
    assert!(event.value["data"].is_object());
    match &event.kind {
        SessionKind::Finish {
            waba_id,
            phone_number_id,
            business_id,
            other_waba_ids,
        } => {
            assert!(is_meta_id(waba_id.as_str()));
            assert!(
                phone_number_id
                    .as_ref()
                    .is_none_or(|p: &PhoneNumberId| is_meta_id(p.as_str()))
            );
            assert!(
                business_id
                    .as_ref()
                    .is_none_or(|b: &BusinessId| is_meta_id(b.as_str()))
            );
            assert!(
                other_waba_ids
                    .iter()
                    .all(|w| is_meta_id(w.as_str()) && w != waba_id)
            );
        }
        SessionKind::Cancel { current_step } => assert!(!current_step.is_empty()),
        SessionKind::Error { code, session_id } => {
            assert!(!code.is_empty() && !session_id.as_str().is_empty());
        }
        SessionKind::Other => {}
    }

    // The worker re-validates what it consumes: same verdict, same event.
    let again = SessionEvent::from_value(event.value.clone()).expect("re-check accepts");
    assert_eq!(again, event);

    // What the ingress publishes is accepted again when re-serialised.
    let bytes = serde_json::to_vec(&event.value).expect("a Value serialises");
    let reparsed = SessionEvent::parse(&bytes).expect("re-serialised body is accepted");
    assert_eq!(reparsed.event, event.event);

    let key = event.dedupe_key();
    // A `DedupeKey` is 64 lowercase hex digits by construction.
    assert_eq!(key.as_str(), canonical_sha256(&event.value));
    let message = event.into_change(1);
    assert_eq!(message.routing_key(), ROUTING_KEY);
    assert_eq!(message.id, key);
    assert_eq!(message.entry_time, None);
});
