//! What a test sends: webhook bodies as Meta shapes them, and wiremock's Graph answers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{APP_ID, Env, PARTNER};

/// A one-change `account_update` webhook.
pub fn webhook(entry_id: &str, time: i64, value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{
        "id": entry_id, "time": time, "changes": [{"field": "account_update", "value": value}]}]})
}

pub fn installed(waba: &str, owner: &str, time: i64) -> Value {
    partner_app("PARTNER_APP_INSTALLED", waba, owner, time)
}

pub fn uninstalled(waba: &str, owner: &str, time: i64) -> Value {
    partner_app("PARTNER_APP_UNINSTALLED", waba, owner, time)
}

/// A partner app `event` for `waba` of `owner`, with its `waba_info`.
fn partner_app(event: &str, waba: &str, owner: &str, time: i64) -> Value {
    webhook(
        PARTNER,
        time,
        json!({"event": event, "waba_info": {
        "waba_id": waba, "owner_business_id": owner, "partner_app_id": "1061231232323117"}}),
    )
}

/// A business integration webhook (`business_integration_install|uninstall`).
pub fn integration(field: &str, business: &str, time: i64) -> Value {
    json!({"object": "application", "entry": [{"id": APP_ID, "time": time,
        "changes": [{"field": field, "value": {"business_manager_id": business,
        "tp_config_id": "cfg-1"}}]}]})
}

pub fn bare_uninstall(entry_id: &str, time: i64) -> Value {
    webhook(entry_id, time, json!({"event": "PARTNER_APP_UNINSTALLED"}))
}

/// Graph answers every token request with `token`, every subscription with success, and
/// every phone number listing with [`PHONE_NUMBER`].
pub async fn graph_ok(env: &Env, token: &str) {
    use wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path_regex},
    };
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/system_user_access_tokens$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": token})))
        .mount(&env.graph)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v22\.0/[0-9]+/subscribed_apps$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&env.graph)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/v22\.0/[0-9]+/phone_numbers$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"id": PHONE_NUMBER, "verified_name": "Acme"}]})),
        )
        .mount(&env.graph)
        .await;
}

/// The first subscription call hangs (30 s, longer than any test waits): a worker can be
/// lost while it waits. Later calls go to the other mocks.
pub async fn hang_first_subscription(env: &Env) {
    use wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path_regex},
    };
    Mock::given(method("POST"))
        .and(path_regex(r"/subscribed_apps$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(30))
                .set_body_json(json!({"success": true})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.graph)
        .await;
}

/// The phone number id Graph lists for every WABA in [`graph_ok`].
pub const PHONE_NUMBER: &str = "106540352299999";
