//! The JSON Schema of a tenant event's body, read from docs/REFERENCE.md ("Tenant events"),
//! and the checks a received body must pass against it.

use serde_json::Value;

/// The body's JSON Schema, as docs/REFERENCE.md ("Tenant events") documents it.
fn documented_schema() -> Value {
    let reference = include_str!("../../../../docs/REFERENCE.md");
    let (_, after) = reference
        .split_once("JSON Schema (draft 2020-12) of the body:")
        .expect("the schema's heading");
    let (_, block) = after.split_once("```json\n").expect("the schema's block");
    let (schema, _) = block.split_once("```").expect("the block's end");
    serde_json::from_str(schema).expect("the documented schema is JSON")
}

/// The body has every field the schema requires, no field it does not name, a type it lists,
/// and the record its type promises (the schema's `allOf`: for a type, a constant field).
pub(crate) fn assert_documented(body: &Value) {
    let schema = documented_schema();
    let fields = schema["properties"].as_object().expect("properties");
    for required in schema["required"].as_array().expect("required") {
        assert!(
            body.get(required.as_str().unwrap()).is_some(),
            "{required} missing"
        );
    }
    for field in body.as_object().expect("an object").keys() {
        assert!(fields.contains_key(field), "{field} is not documented");
    }
    let types = schema["properties"]["type"]["enum"]
        .as_array()
        .expect("enum");
    assert!(
        types.contains(&body["type"]),
        "{} undocumented",
        body["type"]
    );
    for rule in schema["allOf"].as_array().expect("allOf") {
        if rule["if"]["properties"]["type"]["const"] != body["type"] {
            continue;
        }
        let mut constants = Vec::new();
        constants_of(&rule["then"], &mut Vec::new(), &mut constants);
        for (path, want) in constants {
            let got = path.iter().fold(body, |v, k| &v[k.as_str()]);
            assert_eq!(
                got,
                want,
                "{}: {} must be {want}",
                body["type"],
                path.join(".")
            );
        }
    }
}

/// Every `const` under `node`'s nested `properties`, with its path.
fn constants_of<'a>(
    node: &'a Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Value)>,
) {
    if let Some(c) = node.get("const") {
        out.push((path.clone(), c));
    }
    for (name, sub) in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        path.push(name.clone());
        constants_of(sub, path, out);
        path.pop();
    }
}
