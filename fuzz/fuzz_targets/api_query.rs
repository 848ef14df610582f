//! The internal API's query parsers (`wa_api::query`) on arbitrary text: the `GET
//! /v1/tenants` query, the funnel's `since`, the paging cursor.
//!
//! Never panics; what they accept obeys the documented bounds: a query of at most 1024
//! bytes, `limit` 1 to 1000, `attention` 1 to 64 of `[a-z_]`, `since` longer than zero and at
//! most 90 days; an accepted cursor is at most 128 characters and re-encodes to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_api::query::{
    ListQuery, MAX_CURSOR_LEN, MAX_LIMIT, MAX_QUERY_BYTES, decode_cursor, encode_cursor,
    funnel_since,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = ListQuery::parse(Some(text)) {
        assert!(text.len() <= MAX_QUERY_BYTES);
        assert!((1..=MAX_LIMIT).contains(&q.limit));
        if let Some(a) = &q.attention {
            assert!(!a.is_empty() && a.len() <= 64);
            assert!(a.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        // The position it resumes from is one a cursor can carry.
        assert_eq!(decode_cursor(&encode_cursor(&q.from)).unwrap(), q.from);
    }
    if let Ok(since) = funnel_since(Some(text)) {
        assert!(!since.is_zero());
        assert!(since.as_secs() <= 90 * 24 * 3600);
    }
    if let Ok(at) = decode_cursor(text) {
        assert!(text.len() <= MAX_CURSOR_LEN);
        assert_eq!(encode_cursor(&at), text, "a cursor has one spelling");
    }
});
