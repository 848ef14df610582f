//! Golden vectors: the dedupe key, routing key and message body of every change of the project's
//! webhook fixtures (`tests/fixtures/`, copies of Meta-shaped payloads) and of an edge-case body
//! (`tests/golden/edge_cases.json`: escapes, non-ASCII, numbers past i64, odd entries), byte for
//! byte, as `tests/golden/messages.jsonl` records them.
//!
//! The key is what the worker deduplicates on and the body is what every consumer parses: an
//! optimisation of parsing or serialising must leave both exactly as they are, so the expected
//! bytes are written down (from the code as it was before any such optimisation) rather than
//! recomputed.

use serde_json::Value;
use wa_envelope::Envelope;

/// `received_at` stamped on every golden message.
const RECEIVED_AT: i64 = 1_764_000_000;

/// The webhook bodies the vectors cover, in the order of the golden file.
const SOURCES: &[&str] = &[
    "fixtures/partner_app_installed.json",
    "fixtures/partner_app_uninstalled.json",
    "fixtures/partner_app_uninstalled_bare.json",
    "fixtures/account_restriction.json",
    "fixtures/batch_mixed.json",
    "golden/edge_cases.json",
];

fn read(path: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One line of the golden file: `{"source", "index", "routing_key", "message_id", "body"}`.
fn golden() -> Vec<Value> {
    String::from_utf8(read("golden/messages.jsonl"))
        .unwrap_or_else(|e| panic!("golden file is not UTF-8: {e}"))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// What the current code makes of every source, as golden lines.
fn actual() -> Vec<Value> {
    let mut out = Vec::new();
    for source in SOURCES {
        let envelope = Envelope::parse(&read(source)).unwrap_or_else(|e| panic!("{source}: {e}"));
        for (index, change) in envelope.into_changes(RECEIVED_AT).iter().enumerate() {
            let body = String::from_utf8(change.to_json()).unwrap_or_else(|e| panic!("{e}"));
            out.push(serde_json::json!({
                "source": source,
                "index": index,
                "routing_key": change.routing_key(),
                "message_id": change.id.as_str(),
                "body": body,
            }));
        }
    }
    out
}

#[test]
fn every_change_keeps_its_golden_key_routing_key_and_body() {
    let (expected, actual) = (golden(), actual());
    for (want, got) in expected.iter().zip(&actual) {
        assert_eq!(got, want, "{} change {}", want["source"], want["index"]);
    }
    assert_eq!(actual.len(), expected.len(), "number of changes");
}

#[test]
fn the_publish_path_writes_the_golden_bytes() {
    let mut actual = Vec::new();
    for source in SOURCES {
        let envelope = Envelope::parse(&read(source)).unwrap_or_else(|e| panic!("{source}: {e}"));
        for (index, p) in envelope.to_publishable(RECEIVED_AT).iter().enumerate() {
            let body = String::from_utf8(p.body.clone()).unwrap_or_else(|e| panic!("{e}"));
            actual.push(serde_json::json!({
                "source": source,
                "index": index,
                "routing_key": p.routing_key,
                "message_id": p.id.as_str(),
                "body": body,
            }));
        }
    }
    assert_eq!(actual, golden());
}

#[test]
fn the_golden_key_is_the_documented_hash_of_the_identity() {
    // The first fixture's key, from SPEC's definition by hand: SHA-256 over the canonical
    // `[object, entry_id, entry_time, field, value]`.
    let body: Value = serde_json::from_slice(&read(SOURCES[0])).unwrap_or_default();
    let value = &body["entry"][0]["changes"][0]["value"];
    let key = wa_envelope::dedupe_key(
        "whatsapp_business_account",
        "2949482758682047",
        Some(1_763_900_000),
        "account_update",
        value,
    );
    assert_eq!(golden()[0]["message_id"], key.as_str());
}
