//! The tenant check tests that script Graph on wiremock rather than graph-sim: a tenant
//! installed straight in the store with a token held, and Graph's answers about that token.

use secrecy::SecretString;
use serde_json::json;
use wa_ids::WabaId;
use wiremock::{
    Mock, Respond, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::*;

/// Installs `waba` (owned by `owner`, at t=100) straight in the store with `token` held, as
/// an install would leave it.
pub async fn seed_held(env: &Env, waba: &str, owner: &str, token: &str) -> WabaId {
    let id = waba_id(waba);
    env.store
        .apply_install(&wa_store::Install {
            waba_id: id.clone(),
            owner_business_id: business(owner),
            partner_app_id: None,
            solution_id: None,
            solution_partner_business_ids: Vec::new(),
            event_time: 100,
        })
        .await
        .expect("install");
    let token = SecretString::from(token.to_owned());
    assert!(
        env.vault
            .store_token(&id, &token, 100, 100)
            .await
            .expect("store")
    );
    id
}

/// `debug_token` answers with `reply`.
pub async fn debug_token(env: &Env, reply: impl Respond + 'static) {
    Mock::given(method("GET"))
        .and(path("/v22.0/debug_token"))
        .respond_with(reply)
        .mount(&env.graph)
        .await;
}

/// `debug_token`'s answer for a token that is valid (`true`, never expiring) or not.
pub fn token_valid(valid: bool) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"data": {"app_id": APP_ID, "is_valid": valid, "expires_at": 0}}))
}

/// `GET /{waba}/subscribed_apps` refuses the token with a `190` (subcode 460: the session
/// was invalidated), as Graph does for a token it no longer accepts on use.
pub async fn refuse_token_on_use(env: &Env, waba: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v22.0/{waba}/subscribed_apps")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: the session has been invalidated",
            "type": "OAuthException", "code": 190, "error_subcode": 460, "fbtrace_id": "A"}})))
        .mount(&env.graph)
        .await;
}
