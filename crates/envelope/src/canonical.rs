//! Canonical JSON: object keys sorted, no insignificant white space.
//!
//! `serde_json::Value` only sorts keys while serde_json's `preserve_order` feature is off, and
//! any crate in a build can turn that feature on. The dedupe key must not depend on that, nor on
//! the order in which Meta happened to write the keys, so the ordering is done here.

use serde_json::Value;

/// Appends the canonical JSON form of `value` to `out`.
pub(crate) fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(key, out);
                out.push(b':');
                write(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes it.
pub(crate) fn write_str(s: &str, out: &mut Vec<u8>) {
    // Serialising a string into a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).unwrap_or_default();
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serialising a scalar into a Vec cannot fail.
    serde_json::to_writer(&mut *out, value).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn canonical(value: &serde_json::Value) -> String {
        let mut out = Vec::new();
        super::write(value, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"q":1,"p":2}],"x":"é"}}"#)
                .unwrap_or_default();
        assert_eq!(
            canonical(&a),
            r#"{"a":{"x":"é","y":[{"p":2,"q":1}]},"b":1}"#
        );
    }

    #[test]
    fn scalars_and_escapes_are_plain_json() {
        assert_eq!(
            canonical(&json!(["a\"b", null, true, 1.5, -3])),
            r#"["a\"b",null,true,1.5,-3]"#
        );
    }
}
