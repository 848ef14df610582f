//! The webhook envelope and its split into one message per change.
//!
//! Meta batches: one POST carries `entry[]`, each entry carries `changes[]`, and a retried
//! change may come back alone or in a different batch. Each change therefore becomes its own
//! [`ChangeMessage`], identified by a [`dedupe_key`] computed from the change's identity only
//! (object, entry id, entry time, field and the canonical JSON of its value), never from its
//! position in the batch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use wa_ids::DedupeKey;

use crate::{EnvelopeError, canonical};

/// The longest `object` or `field` name accepted; Meta's are well under it.
pub const MAX_NAME_LEN: usize = 100;

/// Field name given to an entry that carries no `changes[]` array: such an entry is kept whole
/// (it routes to the unrouted queue) rather than dropped.
pub const WHOLE_ENTRY_FIELD: &str = "entry";

/// Field name given to an entry or change that is not shaped as Meta documents: its raw JSON
/// and the reason, kept in the unrouted queue.
pub const MALFORMED_FIELD: &str = "malformed";

/// A parsed delivery: `{"object": "...", "entry": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The webhook object, e.g. `whatsapp_business_account`.
    pub object: String,
    /// The entries, in the order Meta sent them.
    pub entries: Vec<Entry>,
}

/// One `entry[]` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `entry.id` as text (Meta sends a string; a number is accepted and kept as its digits).
    pub id: String,
    /// `entry.time`, unix seconds, when present.
    pub time: Option<i64>,
    /// `(field, value)` of each change.
    pub changes: Vec<(String, Value)>,
}

/// One change as published to the broker: the JSON body of each message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeMessage {
    /// The dedupe key, also the AMQP `message_id`.
    pub id: DedupeKey,
    /// The envelope's `object`.
    pub object: String,
    /// The entry's `id`.
    pub entry_id: String,
    /// The entry's `time` (unix seconds), if Meta sent one.
    pub entry_time: Option<i64>,
    /// The change's `field`, e.g. `account_update`.
    pub field: String,
    /// The change's `value`, as received.
    pub value: Value,
    /// When the ingress received the delivery, unix seconds.
    pub received_at: i64,
}

impl ChangeMessage {
    /// The topic routing key: `{object}.{field}`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.object, self.field)
    }

    /// The message body.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, integers and a `Value` always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The dedupe key of a change: lowercase hex SHA-256 over the canonical JSON array
/// `[object, entry_id, entry_time, field, value]`.
pub fn dedupe_key(
    object: &str,
    entry_id: &str,
    entry_time: Option<i64>,
    field: &str,
    value: &Value,
) -> String {
    let mut canonical_value = Vec::with_capacity(256);
    canonical::write(value, &mut canonical_value);
    let mut identity = Vec::with_capacity(canonical_value.len() + 128);
    key_of(
        object,
        entry_id,
        entry_time,
        field,
        &canonical_value,
        &mut identity,
    )
}

/// The dedupe key from the value's canonical JSON: the SHA-256 of
/// `[object,entry_id,entry_time,field,value]` written into `scratch` (cleared first).
fn key_of(
    object: &str,
    entry_id: &str,
    entry_time: Option<i64>,
    field: &str,
    canonical_value: &[u8],
    scratch: &mut Vec<u8>,
) -> String {
    scratch.clear();
    scratch.push(b'[');
    canonical::write_str(object, scratch);
    scratch.push(b',');
    canonical::write_str(entry_id, scratch);
    scratch.push(b',');
    write_time(entry_time, scratch);
    scratch.push(b',');
    canonical::write_str(field, scratch);
    scratch.push(b',');
    scratch.extend_from_slice(canonical_value);
    scratch.push(b']');
    hex::encode(Sha256::digest(&scratch[..]))
}

/// An optional integer as JSON: its digits, or `null`.
fn write_time(time: Option<i64>, out: &mut Vec<u8>) {
    match time {
        // Writing an integer into a Vec cannot fail.
        Some(t) => serde_json::to_writer(&mut *out, &t).unwrap_or_default(),
        None => out.extend_from_slice(b"null"),
    }
}

/// One change as the ingress publishes it: routing key, message id (the dedupe key) and the
/// JSON body, byte for byte what [`ChangeMessage::routing_key`], [`ChangeMessage::id`] and
/// [`ChangeMessage::to_json`] give for the same change, made with one serialisation of the
/// value (its canonical JSON, hashed for the key and copied into the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publishable {
    /// `{object}.{field}`.
    pub routing_key: String,
    /// The dedupe key, also the AMQP `message_id`.
    pub id: DedupeKey,
    /// The message body.
    pub body: Vec<u8>,
}

/// A SHA-256 in lowercase hex (what [`dedupe_key`] and
/// [`crate::session::canonical_sha256`] answer) as a [`DedupeKey`].
pub(crate) fn sha256_key(hex: String) -> DedupeKey {
    // `hex::encode` of 32 bytes is 64 lowercase hex digits, which is the key's rule.
    DedupeKey::try_from(hex).unwrap_or_else(|e| unreachable!("a SHA-256 in hex: {e}"))
}

fn valid_name(name: &str) -> Result<(), EnvelopeError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(EnvelopeError::BadName(
            name.chars().take(MAX_NAME_LEN).collect(),
        ))
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    object: String,
    entry: Vec<Value>,
}

impl Envelope {
    /// Parses a delivery's raw body.
    ///
    /// # Errors
    ///
    /// [`EnvelopeError`] when the body is not JSON, not an object with a string `object` (a
    /// valid routing-key word) and an `entry` array. An entry or a change inside it that is
    /// not shaped as Meta documents is not an error: it becomes a [`MALFORMED_FIELD`] change.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let raw: RawEnvelope =
            serde_json::from_value(value).map_err(|_| EnvelopeError::NotAnEnvelope)?;
        valid_name(&raw.object)?;
        let entries = raw.entry.into_iter().map(parse_entry).collect();
        Ok(Self {
            object: raw.object,
            entries,
        })
    }

    /// How many messages [`Envelope::into_changes`] will produce.
    pub fn change_count(&self) -> usize {
        self.entries.iter().map(|e| e.changes.len()).sum()
    }

    /// One message per change, in order, stamped with `received_at`.
    pub fn into_changes(self, received_at: i64) -> Vec<ChangeMessage> {
        let object = self.object;
        let mut out = Vec::with_capacity(self.entries.iter().map(|e| e.changes.len()).sum());
        for entry in self.entries {
            for (field, value) in entry.changes {
                out.push(ChangeMessage {
                    id: sha256_key(dedupe_key(&object, &entry.id, entry.time, &field, &value)),
                    object: object.clone(),
                    entry_id: entry.id.clone(),
                    entry_time: entry.time,
                    field,
                    value,
                    received_at,
                });
            }
        }
        out
    }

    /// What [`Envelope::into_changes`] and [`ChangeMessage::to_json`] give, ready to publish:
    /// routing key, key and body of each change, in order, stamped with `received_at`.
    ///
    /// The body is written directly in the field order of [`ChangeMessage`] with the value in
    /// canonical JSON, which is what `serde_json` writes for it (its maps keep keys sorted).
    pub fn to_publishable(&self, received_at: i64) -> Vec<Publishable> {
        let mut out = Vec::with_capacity(self.change_count());
        let (mut value, mut scratch) = (Vec::with_capacity(1024), Vec::with_capacity(1024));
        let received_at = serde_json::to_vec(&received_at).unwrap_or_default();
        for entry in &self.entries {
            for (field, change) in &entry.changes {
                value.clear();
                canonical::write(change, &mut value);
                let id = sha256_key(key_of(
                    &self.object,
                    &entry.id,
                    entry.time,
                    field,
                    &value,
                    &mut scratch,
                ));
                let mut body = Vec::with_capacity(value.len() + 256);
                body.extend_from_slice(b"{\"id\":\"");
                body.extend_from_slice(id.as_str().as_bytes());
                body.extend_from_slice(b"\",\"object\":");
                canonical::write_str(&self.object, &mut body);
                body.extend_from_slice(b",\"entry_id\":");
                canonical::write_str(&entry.id, &mut body);
                body.extend_from_slice(b",\"entry_time\":");
                write_time(entry.time, &mut body);
                body.extend_from_slice(b",\"field\":");
                canonical::write_str(field, &mut body);
                body.extend_from_slice(b",\"value\":");
                body.extend_from_slice(&value);
                body.extend_from_slice(b",\"received_at\":");
                body.extend_from_slice(&received_at);
                body.push(b'}');
                let mut routing_key = String::with_capacity(self.object.len() + field.len() + 1);
                routing_key.push_str(&self.object);
                routing_key.push('.');
                routing_key.push_str(field);
                out.push(Publishable {
                    routing_key,
                    id,
                    body,
                });
            }
        }
        out
    }
}

/// Kept whole, as a `malformed` change that routes to the unrouted queue: one odd entry must
/// not make Meta's whole batch fail (and be retried, then dropped, with every good change in
/// it).
fn malformed(reason: &str, raw: Value) -> (String, Value) {
    let mut value = Map::new();
    value.insert("reason".into(), Value::from(reason));
    value.insert("raw".into(), raw);
    (MALFORMED_FIELD.to_owned(), Value::Object(value))
}

fn parse_entry(entry: Value) -> Entry {
    let whole = |reason: &str, id: String, entry: Value| Entry {
        id,
        time: None,
        changes: vec![malformed(reason, entry)],
    };
    let Value::Object(mut map) = entry else {
        return whole("entry is not an object", String::new(), entry);
    };
    let id = match map.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return whole(
                "entry `id` missing or not a string",
                String::new(),
                Value::Object(map),
            );
        }
    };
    let time = match map.get("time") {
        None | Some(Value::Null) => None,
        Some(t) => match t.as_i64() {
            Some(t) => Some(t),
            None => return whole("entry `time` is not an integer", id, Value::Object(map)),
        },
    };
    let changes = match map.remove("changes") {
        Some(Value::Array(changes)) => changes.into_iter().map(parse_change).collect(),
        Some(other) => {
            map.insert("changes".into(), other);
            return whole("entry `changes` is not an array", id, Value::Object(map));
        }
        // Kept whole rather than dropped: it lands in the unrouted queue for a human to see.
        None => vec![(WHOLE_ENTRY_FIELD.to_owned(), Value::Object(map))],
    };
    Entry { id, time, changes }
}

fn parse_change(change: Value) -> (String, Value) {
    let Value::Object(mut map) = change else {
        return malformed("change is not an object", change);
    };
    let field = match map.get("field") {
        Some(Value::String(field)) if valid_name(field).is_ok() => field.clone(),
        Some(Value::String(_)) => {
            return malformed("change `field` cannot be a routing key", Value::Object(map));
        }
        _ => return malformed("change has no string `field`", Value::Object(map)),
    };
    map.remove("field");
    let value = map
        .remove("value")
        .unwrap_or_else(|| Value::Object(Map::new()));
    (field, value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(v: Value) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(v.to_string().as_bytes())
    }

    fn change(field: &str, value: Value) -> Value {
        json!({"field": field, "value": value})
    }

    #[test]
    fn each_change_of_each_entry_is_one_message() {
        let env = envelope(json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "time": 10, "changes": [change("account_update", json!({"event": "A"})),
                                                change("messages", json!({"n": 1}))]},
            {"id": 2, "time": 11, "changes": [change("account_update", json!({"event": "B"}))]},
        ]}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(env.change_count(), 3);
        let msgs = env.into_changes(99);
        let keys: Vec<_> = msgs.iter().map(ChangeMessage::routing_key).collect();
        assert_eq!(
            keys,
            [
                "whatsapp_business_account.account_update",
                "whatsapp_business_account.messages",
                "whatsapp_business_account.account_update"
            ]
        );
        assert_eq!(msgs[2].entry_id, "2");
        assert_eq!(msgs[2].entry_time, Some(11));
        assert_eq!(msgs[0].received_at, 99);
        assert_eq!(msgs[1].value, json!({"n": 1}));
    }

    #[test]
    fn the_key_ignores_batch_position_and_key_order() {
        let alone = envelope(json!({"object": "o", "entry": [
            {"id": "1", "time": 10, "changes": [change("f", json!({"a": 1, "b": [1, 2]}))]}]}))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_changes(1);
        let batched = Envelope::parse(
            br#"{"entry":[{"id":"9","time":3,"changes":[{"field":"f","value":{}}]},
                {"time":10,"changes":[{"value":{"b":[1,2],"a":1},"field":"f"}],"id":"1"}],
                "object":"o"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .into_changes(2);
        assert_eq!(alone[0].id, batched[1].id);
        assert_ne!(batched[0].id, batched[1].id);
    }

    #[test]
    fn every_part_of_the_identity_changes_the_key() {
        let v = json!({"event": "X"});
        let base = dedupe_key("o", "1", Some(10), "f", &v);
        assert_eq!(base.len(), 64);
        assert!(
            base.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        for other in [
            dedupe_key("p", "1", Some(10), "f", &v),
            dedupe_key("o", "2", Some(10), "f", &v),
            dedupe_key("o", "1", Some(11), "f", &v),
            dedupe_key("o", "1", None, "f", &v),
            dedupe_key("o", "1", Some(10), "g", &v),
            dedupe_key("o", "1", Some(10), "f", &json!({"event": "Y"})),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn not_an_envelope_is_refused() {
        for body in [
            &b"not json"[..],
            b"[]",
            br#"{"entry": []}"#,
            br#"{"object": "o"}"#,
            br#"{"object": "o", "entry": {}}"#,
            br#"{"object": 5, "entry": []}"#,
        ] {
            assert!(
                Envelope::parse(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn an_object_that_would_break_routing_is_refused() {
        for object in ["a.b", "a#", "*", "", &"x".repeat(101)] {
            assert!(matches!(
                envelope(json!({"object": object, "entry": []})),
                Err(EnvelopeError::BadName(_))
            ));
        }
    }

    #[test]
    fn odd_entries_and_changes_are_kept_as_malformed_beside_the_good_ones() {
        let msgs = envelope(json!({"object": "o", "entry": [
            {"id": "1", "time": 1, "changes": [change("ok", json!({"n": 1})), {"value": {}}, change("a.b", json!({})), 7]},
            {"id": "2", "time": "x", "changes": []},
            {"changes": []},
            "not an entry",
            {"id": "3", "changes": {}},
        ]}))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_changes(0);
        let fields: Vec<&str> = msgs.iter().map(|m| m.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "ok",
                "malformed",
                "malformed",
                "malformed",
                "malformed",
                "malformed",
                "malformed",
                "malformed"
            ]
        );
        let reasons: Vec<&str> = msgs[1..]
            .iter()
            .map(|m| m.value["reason"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            reasons,
            [
                "change has no string `field`",
                "change `field` cannot be a routing key",
                "change is not an object",
                "entry `time` is not an integer",
                "entry `id` missing or not a string",
                "entry is not an object",
                "entry `changes` is not an array",
            ]
        );
        assert_eq!(
            msgs[2].value["raw"]["field"], "a.b",
            "the raw change is kept"
        );
        assert_eq!(msgs[4].entry_id, "2");
        assert_eq!(msgs[0].routing_key(), "o.ok");
        assert_eq!(msgs[1].routing_key(), "o.malformed");
        let keys: std::collections::HashSet<_> = msgs.iter().map(|m| m.id.clone()).collect();
        assert_eq!(keys.len(), msgs.len(), "each kept change has its own key");
    }

    #[test]
    fn an_entry_without_changes_is_kept_whole() {
        let msgs = envelope(
            json!({"object": "page", "entry": [{"id": "1", "time": 5, "messaging": [{"m": 1}]}]}),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .into_changes(0);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].field, WHOLE_ENTRY_FIELD);
        assert_eq!(msgs[0].value["messaging"], json!([{"m": 1}]));
    }

    #[test]
    fn the_message_body_has_the_documented_fields() {
        let msg = envelope(json!({"object": "o", "entry": [{"id": "1", "time": 5, "changes": [change("f", json!({"k": "v"}))]}]}))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_changes(7)
            .remove(0);
        let body: Value = serde_json::from_slice(&msg.to_json()).unwrap_or_default();
        let mut keys: Vec<_> = body
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        assert_eq!(
            keys,
            [
                "entry_id",
                "entry_time",
                "field",
                "id",
                "object",
                "received_at",
                "value"
            ]
        );
        assert_eq!(body["id"], json!(msg.id));
    }
}
