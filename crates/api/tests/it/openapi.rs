//! `docs/openapi.yaml` against the server: the same routes both ways, and the same rule on
//! which of them need a bearer.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;
use wa_api::ROUTES;

use crate::helpers::spawn_api;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).expect("docs/openapi.yaml is YAML")
}

/// (METHOD, path template, needs a bearer) of every documented operation.
fn documented() -> BTreeSet<(String, String, bool)> {
    let doc = document();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let global_auth = doc["security"].as_sequence().is_some_and(|s| !s.is_empty());
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let method = method.as_str().unwrap();
            if ![
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method)
            {
                continue;
            }
            let auth = match op.get("security") {
                Some(list) => list.as_sequence().is_some_and(|s| !s.is_empty()),
                None => global_auth,
            };
            out.insert((
                method.to_uppercase(),
                path.as_str().unwrap().to_owned(),
                auth,
            ));
        }
    }
    out
}

#[test]
fn the_document_and_the_route_table_name_the_same_routes() {
    let documented: BTreeSet<(String, String)> =
        documented().into_iter().map(|(m, p, _)| (m, p)).collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "served but not in docs/openapi.yaml"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in docs/openapi.yaml but not served"
    );
}

#[test]
fn every_authenticated_operation_documents_401_and_every_one_400() {
    let doc = document();
    for (method, path, auth) in documented() {
        let op = &doc["paths"][path.as_str()][method.to_lowercase().as_str()];
        let responses = op["responses"].as_mapping().expect("responses");
        let has = |code: &str| responses.contains_key(Value::from(code));
        assert!(has("200") && has("400"), "{method} {path}");
        assert_eq!(
            has("401"),
            auth,
            "{method} {path}: 401 documented iff a bearer is needed"
        );
    }
}

#[tokio::test]
async fn every_documented_route_is_served_with_its_documented_auth() {
    let api = spawn_api().await;
    for (method, template, auth) in documented() {
        assert_eq!(method, "GET");
        let path = template.replace("{waba_id}", "102290129340398");
        let authed = api.get(&path).await;
        let status = authed.status().as_u16();
        let body = authed.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no such route"),
            "{template}: {status} {body}"
        );
        let anonymous = api.client.get(api.url(&path)).send().await.unwrap();
        assert_eq!(anonymous.status() == 401, auth, "{template}");
    }
    api.stop().await;
}
