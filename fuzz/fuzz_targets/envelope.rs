//! `Envelope::parse` + `into_changes` on arbitrary bytes.
//!
//! Never panics; every message it produces has a 64-digit lowercase hex id (the dedupe key of
//! its own identity, recomputed here) and a routing key `object.field` with exactly one dot and
//! two non-empty words, and there are as many messages as `change_count` said.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_envelope::{Envelope, dedupe_key};

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= wa_envelope::change::MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse(data) else {
        return;
    };
    let count = envelope.change_count();
    let object = envelope.object.clone();
    let messages = envelope.clone().into_changes(7);
    assert_eq!(messages.len(), count);
    for m in &messages {
        assert!(is_lower_hex_64(m.id.as_str()), "bad id {:?}", m.id);
        assert_eq!(
            m.id.as_str(),
            dedupe_key(&m.object, &m.entry_id, m.entry_time, &m.field, &m.value),
            "the id is the dedupe key of the message's own identity"
        );
        assert_eq!(m.object, object);
        let key = m.routing_key();
        let (o, f) = key.split_once('.').expect("routing key has a dot");
        assert!(is_word(o) && is_word(f), "bad routing key {key:?}");
        assert_eq!(key.matches('.').count(), 1, "bad routing key {key:?}");
        // The body is JSON with the documented id.
        let body: serde_json::Value = serde_json::from_slice(&m.to_json()).expect("body is JSON");
        assert_eq!(body["id"].as_str(), Some(m.id.as_str()));
    }
    // Parsing is deterministic: the same bytes give the same keys (a redelivery dedupes).
    let again: Vec<String> = Envelope::parse(data)
        .expect("parsed once, parses again")
        .into_changes(8)
        .into_iter()
        .map(|m| m.id.into_string())
        .collect();
    let first: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert!(again.iter().eq(first.into_iter()));
});
