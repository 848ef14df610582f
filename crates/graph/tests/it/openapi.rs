//! Our error parsing and our subscribe request checked against Meta's OpenAPI description
//! (an extract of `business-messaging-api_v23.0.yaml` in tests/fixtures, MIT licence).

use http::HeaderMap;
use secrecy::SecretString;
use wa_graph::{GraphError, parse_error};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path_regex},
};

use crate::helpers::*;

/// The `error` fields this crate reads; Meta's display-only texts are left out on purpose.
const READ: &[&str] = &[
    "message",
    "type",
    "code",
    "error_subcode",
    "fbtrace_id",
    "is_transient",
];
const DISPLAY_ONLY: &[&str] = &["error_user_title", "error_user_msg"];

#[test]
fn we_read_every_graph_api_error_field_meta_defines() {
    let spec = fixture_json("openapi_subscribed_apps_post.json");
    let schema = &spec["error_schema"];
    assert_eq!(schema["name"], "GraphAPIError");
    let properties = schema["properties"].as_object().expect("properties");
    for field in READ {
        assert!(
            properties.contains_key(*field),
            "{field} is not in GraphAPIError"
        );
    }
    for field in properties.keys() {
        assert!(
            READ.contains(&field.as_str()) || DISPLAY_ONLY.contains(&field.as_str()),
            "GraphAPIError field {field} is neither read nor deliberately ignored"
        );
    }
    for required in schema["required"].as_array().expect("required") {
        assert!(READ.contains(&required.as_str().expect("name")));
    }
}

#[test]
fn meta_s_own_error_examples_parse_and_classify() {
    let spec = fixture_json("openapi_subscribed_apps_post.json");
    let expected_transient = |status: u16| matches!(status, 429 | 500);
    let errors = spec["errors"].as_object().expect("errors");
    assert!(errors.len() >= 6);
    for (status, example) in errors {
        let status: u16 = status.parse().expect("status");
        let body = serde_json::to_vec(example).expect("json");
        let err = parse_error(status, &HeaderMap::new(), &body);
        let e = &example["error"];
        let GraphError::Api {
            code,
            subcode,
            message,
            error_type,
            fbtrace_id,
            transient,
            ..
        } = &err
        else {
            panic!("{status}: {err:?}");
        };
        assert_eq!(*code, e["code"].as_i64(), "{status}");
        assert_eq!(*subcode, e["error_subcode"].as_i64(), "{status}");
        assert_eq!(Some(message.as_str()), e["message"].as_str(), "{status}");
        assert_eq!(error_type.as_deref(), e["type"].as_str(), "{status}");
        assert_eq!(fbtrace_id.as_deref(), e["fbtrace_id"].as_str(), "{status}");
        assert_eq!(*transient, expected_transient(status), "{status}: {err}");
    }
}

#[tokio::test]
async fn subscribe_matches_the_documented_path_and_accepts_every_success_example() {
    let spec = fixture_json("openapi_subscribed_apps_post.json");
    for example in spec["success"].as_array().expect("examples") {
        let server = MockServer::start().await;
        // Version and WABA-ID patterns from the OpenAPI path parameters.
        Mock::given(method("POST"))
            .and(path_regex(r"^/v[0-9]+\.[0-9]+/[0-9]+/subscribed_apps$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(example.clone()))
            .expect(1)
            .mount(&server)
            .await;

        client(&server.uri())
            .subscribe_app(&waba("1234567890123456"), &SecretString::from("tok"))
            .await
            .unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}
