//! The typed ids of `wa-ids` (what the internal API's paths and cursors, the CLI's arguments
//! and the ingress's payloads are parsed with) on arbitrary text.
//!
//! Never panics; an accepted id obeys its documented rule (docs/REFERENCE.md,
//! "Identifiers") and reads back as the text given; a refusal's message echoes at most 64
//! characters of the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_ids::{DedupeKey, SessionId, WabaId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match WabaId::parse(text) {
        Ok(id) => {
            assert_eq!(id.as_str(), text);
            assert!(!text.is_empty() && text.len() <= 32);
            assert!(text.bytes().all(|b| b.is_ascii_digit()));
        }
        Err(e) => assert!(e.to_string().chars().count() <= 64 + 80, "{e}"),
    }
    if let Ok(id) = SessionId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert!(!text.is_empty() && text.len() <= 128);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        );
    }
    if let Ok(key) = DedupeKey::parse(text) {
        assert_eq!(key.as_str(), text);
        assert_eq!(text.len(), 64);
        assert!(text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }
});
