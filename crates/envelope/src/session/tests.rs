//! Unit tests of the session event rules: each accepted shape, each refusal and its reason.

use serde_json::json;

use super::*;

fn parse(v: Value) -> Result<SessionEvent, SessionError> {
    SessionEvent::parse(v.to_string().as_bytes())
}

fn reason(v: Value) -> String {
    match parse(v) {
        Err(SessionError::Invalid(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn finish_events_carry_the_waba_and_phone_number() {
    for event in FINISH_EVENTS {
        let ev = parse(json!({"type": TYPE, "event": event, "data": {
            "phone_number_id": "106540352242922", "waba_id": "524126980791429",
            "business_id": "2729063490586005"}}))
        .unwrap();
        assert_eq!(
            ev.kind,
            SessionKind::Finish {
                waba_id: "524126980791429".parse().unwrap(),
                phone_number_id: Some("106540352242922".parse().unwrap()),
                business_id: Some("2729063490586005".parse().unwrap()),
                other_waba_ids: vec![],
            }
        );
    }
    let only_waba = parse(json!({"type": TYPE, "event": "FINISH_ONLY_WABA",
        "data": {"waba_id": "1", "waba_ids": ["1", "2", "2", "3"]}}))
    .unwrap();
    assert_eq!(
        only_waba.kind,
        SessionKind::Finish {
            waba_id: "1".parse().unwrap(),
            phone_number_id: None,
            business_id: None,
            other_waba_ids: vec!["2".parse().unwrap(), "3".parse().unwrap()],
        }
    );
}

#[test]
fn cancel_and_errors_are_told_apart() {
    let cancel = parse(json!({"type": TYPE, "event": "CANCEL",
        "data": {"current_step": "PHONE_NUMBER_SETUP"}}))
    .unwrap();
    assert_eq!(
        cancel.kind,
        SessionKind::Cancel {
            current_step: "PHONE_NUMBER_SETUP".into()
        }
    );
    let error = parse(json!({"type": TYPE, "event": "CANCEL", "data": {
        "error_message": "Your verified name violates WhatsApp guidelines.",
        "error_id": "524126", "session_id": "f34b51dab5e0498",
        "timestamp": 1689037117}}))
    .unwrap();
    assert_eq!(
        error.kind,
        SessionKind::Error {
            code: "524126".into(),
            session_id: "f34b51dab5e0498".parse().unwrap()
        }
    );
    let numeric = parse(json!({"type": TYPE, "event": "CANCEL", "data": {
        "error_message": "x", "error_code": 2593079, "session_id": "s-1"}}))
    .unwrap();
    assert!(matches!(numeric.kind, SessionKind::Error { ref code, .. } if code == "2593079"));
    assert_eq!(numeric.session_ids(), ["s-1"]);
}

#[test]
fn unknown_events_are_kept() {
    let ev = parse(
        json!({"type": TYPE, "event": "SOMETHING_NEW", "data": {"x": [1]},
        "version": 3}),
    )
    .unwrap();
    assert_eq!(ev.kind, SessionKind::Other);
    assert_eq!(ev.value["version"], 3);
}

#[test]
fn malformed_events_say_why() {
    assert!(matches!(
        SessionEvent::parse(b"{nope"),
        Err(SessionError::Json(_))
    ));
    for (body, needle) in [
        (json!([]), "object"),
        (json!({"event": "FINISH", "data": {}}), "`type`"),
        (
            json!({"type": "OTHER", "event": "FINISH", "data": {}}),
            "`type`",
        ),
        (json!({"type": TYPE, "data": {}}), "`event`"),
        (
            json!({"type": TYPE, "event": "finish", "data": {}}),
            "`event`",
        ),
        (json!({"type": TYPE, "event": "", "data": {}}), "`event`"),
        (
            json!({"type": TYPE, "event": "A".repeat(65), "data": {}}),
            "`event`",
        ),
        (json!({"type": TYPE, "event": "FINISH"}), "`data`"),
        (
            json!({"type": TYPE, "event": "FINISH", "data": []}),
            "`data`",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {}}),
            "waba_id",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": 5}}),
            "waba_id",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "1{2}"}}),
            "waba_id",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "waba-1"}}),
            "1 to 32 ASCII digits",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "1", "waba_ids": ["1", "w2"]}}),
            "data.waba_ids[]",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "1", "phone_number_id": 7}}),
            "phone_number_id",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "1", "business_id": ""}}),
            "business_id",
        ),
        (
            json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "1", "waba_ids": "2"}}),
            "waba_ids",
        ),
        (
            json!({"type": TYPE, "event": "CANCEL", "data": {}}),
            "current_step",
        ),
        (
            json!({"type": TYPE, "event": "CANCEL", "data": {"current_step": "a b"}}),
            "current_step",
        ),
        (
            json!({"type": TYPE, "event": "CANCEL", "data": {"error_message": "x", "session_id": "s"}}),
            "error_code",
        ),
        (
            json!({"type": TYPE, "event": "CANCEL", "data": {"error_message": "x", "error_code": "1"}}),
            "session_id",
        ),
        (
            json!({"type": TYPE, "event": "CANCEL", "data": {"error_message": "", "error_code": "1", "session_id": "s"}}),
            "error_message",
        ),
        (
            json!({"type": TYPE, "event": "X", "data": {}, "launch_id": "has space"}),
            "launch_id",
        ),
    ] {
        let r = reason(body.clone());
        assert!(r.contains(needle), "{body}: {r}");
    }
}

#[test]
fn the_key_is_the_canonical_body_and_ignores_key_order() {
    let a = SessionEvent::parse(
        br#"{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"current_step":"S"}}"#,
    )
    .unwrap();
    let b = SessionEvent::parse(
        br#"{ "data": {"current_step": "S"}, "event": "CANCEL", "type": "WA_EMBEDDED_SIGNUP" }"#,
    )
    .unwrap();
    assert_eq!(a.dedupe_key(), b.dedupe_key());
    assert_eq!(a.dedupe_key().as_str().len(), 64);
    let launched = parse(json!({"type": TYPE, "event": "CANCEL",
        "data": {"current_step": "S"}, "launch_id": "L1"}))
    .unwrap();
    assert_ne!(a.dedupe_key(), launched.dedupe_key());
    assert_eq!(launched.session_ids(), ["L1"]);
}

#[test]
fn the_message_routes_as_embedded_signup_session() {
    let ev = parse(
        json!({"type": TYPE, "event": "FINISH", "data": {"waba_id": "1"},
        "launch_id": "L"}),
    )
    .unwrap();
    let key = ev.dedupe_key();
    let msg = ev.into_change(42);
    assert_eq!(msg.routing_key(), ROUTING_KEY);
    assert_eq!(msg.id, key);
    assert_eq!(msg.entry_id, "L");
    assert_eq!(msg.entry_time, None);
    assert_eq!(msg.received_at, 42);
    assert_eq!(msg.value["data"]["waba_id"], "1");
}
