//! Property: the dedupe key of a change depends on its identity only, never on how Meta
//! batched or wrote it.
//!
//! For any list of changes (arbitrary JSON values; entry ids, times and fields from a small
//! alphabet so that collisions and shared entries are common), any re-batching yields the
//! same set of keys: the changes split across several envelopes, shuffled across entries of
//! the same id and time and within them, every object written with its keys in another order,
//! other white space, strings escaped differently, numeric entry ids written as numbers. And
//! changes with different identities never share a key.
//!
//! And the publish path ([`Envelope::to_publishable`], one serialisation per change) writes,
//! for any such body, byte for byte the routing key, key and body of
//! [`Envelope::into_changes`] and [`crate::ChangeMessage::to_json`].

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::Envelope;

/// One change, as Meta would describe it.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    object: &'static str,
    entry_id: &'static str,
    time: Option<i64>,
    field: &'static str,
    value: Value,
}

const OBJECTS: [&str; 2] = ["whatsapp_business_account", "page"];
const ENTRY_IDS: [&str; 4] = ["1", "42", "102290129340398", "waba-x"];
const TIMES: [Option<i64>; 4] = [None, Some(0), Some(1_730_000_000), Some(-5)];
const FIELDS: [&str; 4] = ["account_update", "messages", "a-b", "x_1"];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Quarters are exact in binary, so they survive text and back; never -0.0.
        (-400i32..400).prop_map(|q| Value::from(f64::from(q) / 4.0 + 0.25)),
        "[a-c\"\\\\@é/ \u{1F600}\u{7f}\n]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn change() -> impl Strategy<Value = Change> {
    (
        prop::sample::select(&OBJECTS[..]),
        prop::sample::select(&ENTRY_IDS[..]),
        prop::sample::select(&TIMES[..]),
        prop::sample::select(&FIELDS[..]),
        json_value(),
    )
        .prop_map(|(object, entry_id, time, field, value)| Change {
            object,
            entry_id,
            time,
            field,
            value,
        })
}

/// A small deterministic generator, so one proptest seed describes a whole re-batching.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    fn space(&mut self) -> &'static str {
        [" ", "", "\n  ", "", "\t"][self.below(5)]
    }
}

/// A JSON string literal, either as serde_json writes it or with every non-ASCII character
/// (and some ASCII ones) as `\u` escapes: the same string to any parser.
fn write_string(s: &str, rng: &mut Rng, out: &mut String) {
    if rng.coin() {
        out.push_str(&Value::from(s).to_string());
        return;
    }
    out.push('"');
    for unit in s.encode_utf16() {
        match unit {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x2f => out.push_str("\\/"),
            0x61..=0x7a if rng.coin() => {
                out.push(char::from(u8::try_from(unit).unwrap_or(b'a')));
            }
            _ => out.push_str(&format!("\\u{unit:04X}")),
        }
    }
    out.push('"');
}

/// `value` as JSON text with object keys in a random order and random white space.
fn write_value(value: &Value, rng: &mut Rng, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            rng.shuffle(&mut keys);
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(rng.space());
                write_string(key, rng, out);
                out.push_str(rng.space());
                out.push(':');
                write_value(&map[key], rng, out);
            }
            out.push_str(rng.space());
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(rng.space());
                write_value(item, rng, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, rng, out),
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Writes `fields` (already rendered values) as an object in a random key order.
fn write_object(mut fields: Vec<(&str, String)>, rng: &mut Rng) -> String {
    rng.shuffle(&mut fields);
    let mut out = String::from("{");
    for (i, (key, text)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(rng.space());
        write_string(key, rng, &mut out);
        out.push(':');
        out.push_str(&text);
    }
    out.push('}');
    out
}

/// Where a change goes inside an envelope: entry id, time, and which of the entries with that
/// id and time.
type Slot<'a> = (&'a str, Option<i64>, usize);

/// The changes as one or more delivery bodies, batched at random by `seed`: each envelope
/// holds changes of one object; changes of the same entry id and time are spread over one or
/// more entries, in any order.
fn rebatch(changes: &[Change], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let envelopes_per_object = 1 + rng.below(3);
    let envelope_of: Vec<usize> = changes
        .iter()
        .map(|_| rng.below(envelopes_per_object))
        .collect();
    let mut bodies = Vec::new();
    for object in OBJECTS {
        for envelope in 0..envelopes_per_object {
            // (entry id, time, slot) -> changes; a slot splits one id/time over entries.
            let mut entries: Vec<(Slot<'_>, Vec<&Change>)> = Vec::new();
            for (c, _) in changes
                .iter()
                .zip(&envelope_of)
                .filter(|(c, e)| c.object == object && **e == envelope)
            {
                let slot = (c.entry_id, c.time, rng.below(2));
                match entries.iter_mut().find(|(k, _)| *k == slot) {
                    Some((_, list)) => list.push(c),
                    None => entries.push((slot, vec![c])),
                }
            }
            if entries.is_empty() && rng.coin() {
                continue;
            }
            rng.shuffle(&mut entries);
            let mut entry_texts = Vec::new();
            for ((entry_id, time, _), mut list) in entries {
                rng.shuffle(&mut list);
                let change_texts: Vec<String> = list
                    .into_iter()
                    .map(|c| {
                        let mut value = String::new();
                        write_value(&c.value, &mut rng, &mut value);
                        let mut field = String::new();
                        write_string(c.field, &mut rng, &mut field);
                        let mut fields = vec![("field", field)];
                        // A change without `value` is the same as one with `{}`.
                        if c.value != Value::Object(Map::new()) || rng.coin() {
                            fields.push(("value", value));
                        }
                        write_object(fields, &mut rng)
                    })
                    .collect();
                let id_text = if entry_id.bytes().all(|b| b.is_ascii_digit()) && rng.coin() {
                    entry_id.to_owned()
                } else {
                    let mut s = String::new();
                    write_string(entry_id, &mut rng, &mut s);
                    s
                };
                let mut fields = vec![
                    ("id", id_text),
                    ("changes", format!("[{}]", change_texts.join(","))),
                ];
                match time {
                    Some(t) => fields.push(("time", t.to_string())),
                    None if rng.coin() => fields.push(("time", "null".to_owned())),
                    None => {}
                }
                entry_texts.push(write_object(fields, &mut rng));
            }
            let mut object_text = String::new();
            write_string(object, &mut rng, &mut object_text);
            let body = write_object(
                vec![
                    ("object", object_text),
                    (
                        "entry",
                        format!("[{}]", entry_texts.join(&format!(",{}", rng.space()))),
                    ),
                ],
                &mut rng,
            );
            bodies.push(body.into_bytes());
        }
    }
    bodies
}

/// Every dedupe key the ingress would publish for these bodies.
fn keys(bodies: &[Vec<u8>]) -> Result<BTreeSet<String>, TestCaseError> {
    let mut keys = BTreeSet::new();
    for body in bodies {
        let envelope = Envelope::parse(body)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(body))))?;
        for message in envelope.into_changes(0) {
            prop_assert_ne!(
                message.field.as_str(),
                crate::change::MALFORMED_FIELD,
                "{}",
                String::from_utf8_lossy(body)
            );
            keys.insert(message.id.into_string());
        }
    }
    Ok(keys)
}

/// The key of each change delivered alone, written as serde_json writes it.
fn key_alone(c: &Change) -> Result<String, TestCaseError> {
    let body = serde_json::json!({"object": c.object, "entry": [{
        "id": c.entry_id, "time": c.time,
        "changes": [{"field": c.field, "value": c.value}]}]});
    let mut messages = Envelope::parse(body.to_string().as_bytes())
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .into_changes(0);
    prop_assert_eq!(messages.len(), 1);
    Ok(messages.remove(0).id.into_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_rebatching_yields_the_same_keys(
        changes in prop::collection::vec(change(), 1..12),
        // Some changes delivered more than once, as Meta's retries do.
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        seed_a in any::<u64>(),
        seed_b in any::<u64>(),
    ) {
        let mut delivered = changes.clone();
        for r in &repeats {
            delivered.push(changes[r.index(changes.len())].clone());
        }
        let expected: BTreeSet<String> =
            changes.iter().map(key_alone).collect::<Result<_, _>>()?;
        let a = keys(&rebatch(&delivered, seed_a))?;
        let b = keys(&rebatch(&delivered, seed_b))?;
        prop_assert_eq!(&a, &expected);
        prop_assert_eq!(&b, &expected);
    }

    #[test]
    fn distinct_changes_never_share_a_key(
        changes in prop::collection::vec(change(), 1..16),
        seed in any::<u64>(),
    ) {
        let mut distinct: Vec<&Change> = Vec::new();
        for c in &changes {
            if !distinct.contains(&c) {
                distinct.push(c);
            }
        }
        let alone: HashSet<String> =
            distinct.iter().map(|c| key_alone(c)).collect::<Result<_, _>>()?;
        prop_assert_eq!(alone.len(), distinct.len());
        let batched = keys(&rebatch(&changes, seed))?;
        prop_assert_eq!(batched.len(), distinct.len());
    }

    #[test]
    fn the_publish_path_writes_what_the_change_messages_serialise_to(
        changes in prop::collection::vec(change(), 1..12),
        seed in any::<u64>(),
        received_at in any::<i64>(),
    ) {
        for body in rebatch(&changes, seed) {
            let envelope = Envelope::parse(&body)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let fast = envelope.to_publishable(received_at);
            let slow = envelope.into_changes(received_at);
            prop_assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(&slow) {
                prop_assert_eq!(&f.routing_key, &s.routing_key());
                prop_assert_eq!(&f.id, &s.id);
                let body = s.to_json();
                prop_assert_eq!(String::from_utf8_lossy(&f.body), String::from_utf8_lossy(&body));
            }
        }
    }
}
