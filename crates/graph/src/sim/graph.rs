//! How the simulator answers a Graph call: the failure modes first, then the access token and
//! its `appsecret_proof`, then the endpoint's own answer from the token and subscription
//! state ([`super::tenants`]). Routing and the `/_sim` routes are the parent's.

use http::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;
use wa_envelope::signature::hmac_hex;

use super::{
    Endpoint, Reply, State,
    answers::{json_reply, phone_number_ids},
    received::Outcome,
    tenants::{Issued, issued, token},
};

const INVALID_TOKEN: &str = "Error validating access token: The session has been invalidated \
                             because the user changed their password or Facebook has changed \
                             the session for security reasons (graph-sim).";

impl State {
    pub(super) fn graph(
        &self,
        endpoint: Endpoint,
        id: &str,
        params: &[(String, String)],
    ) -> (Outcome, Reply) {
        let param = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        {
            let mut live = self.live();
            let calls = &mut live.calls;
            match endpoint {
                Endpoint::Token => calls.system_user_access_tokens += 1,
                Endpoint::DebugToken => calls.debug_token += 1,
                Endpoint::Subscribe => calls.subscribed_apps += 1,
                Endpoint::SubscribedApps => calls.subscribed_apps_list += 1,
                Endpoint::PhoneNumbers => calls.phone_numbers += 1,
            }
            if live.mode.fail_permanent {
                live.calls.failed_permanent += 1;
                drop(live);
                let message = "Error validating access token: The user has not authorized \
                               application (graph-sim fail_permanent).";
                let reply = self.error(StatusCode::BAD_REQUEST, 190, Some(458), message, false);
                return (Outcome::FailedPermanent, reply);
            }
            if live.mode.fail_transient > 0 {
                live.mode.fail_transient -= 1;
                live.calls.failed_transient += 1;
                drop(live);
                let message = "An unexpected error has occurred. Please retry your request later.";
                let reply = self.error(StatusCode::INTERNAL_SERVER_ERROR, 2, None, message, true);
                return (Outcome::FailedTransient, reply);
            }
        }
        let secret = self.app_secret.expose_secret();
        let strict = self
            .system_user_token
            .as_ref()
            .map(ExposeSecret::expose_secret);
        let Some(access) = param("access_token").filter(|t| !t.is_empty()) else {
            return self.reject(104, "An access token is required to request this resource.");
        };
        match param("appsecret_proof") {
            Some(proof) if proof != hmac_hex(secret.as_bytes(), access.as_bytes()) => {
                return self.reject(100, "Invalid appsecret_proof provided in the API argument");
            }
            None if strict.is_some() => {
                return self.reject(
                    100,
                    "API calls from the server require an appsecret_proof argument",
                );
            }
            _ => {}
        }
        let reply = match endpoint {
            Endpoint::Token => {
                if strict.is_some_and(|expected| expected != access) {
                    return self.reject(
                        190,
                        "Invalid OAuth access token - Cannot parse access token",
                    );
                }
                if param("fetch_only") != Some("true") {
                    return self.reject(100, "(#100) graph-sim only supports fetch_only=true");
                }
                if param("system_user_id").is_none_or(str::is_empty) {
                    return self.reject(100, "(#100) The parameter system_user_id is required");
                }
                let generation = self.live().tenants.fetch(id, super::now());
                json!({"access_token": token(secret, id, generation)})
            }
            Endpoint::DebugToken => {
                let app_token = format!("{}|{secret}", self.app_id);
                if strict.is_some() && access != app_token {
                    return self.reject(190, "Invalid OAuth access token signature.");
                }
                let Some(input) = param("input_token").filter(|t| !t.is_empty()) else {
                    return self.reject(100, "(#100) The parameter input_token is required");
                };
                self.debug_token(input, strict.is_some())
            }
            Endpoint::Subscribe | Endpoint::SubscribedApps | Endpoint::PhoneNumbers => {
                let issued = issued(secret, access);
                if strict.is_some() && issued.is_none() {
                    return self.reject(
                        190,
                        "Invalid OAuth access token - Cannot parse access token",
                    );
                }
                if issued.as_ref().is_some_and(|i| !self.valid(i)) {
                    return self.invalid_token();
                }
                match endpoint {
                    Endpoint::Subscribe => {
                        if !self.live().tenants.subscribe(id) {
                            return self.refuse_subscription();
                        }
                        json!({"success": true})
                    }
                    Endpoint::SubscribedApps => {
                        let data = if self.live().tenants.subscribed(id) {
                            vec![json!({"whatsapp_business_api_data": {
                                "id": self.app_id, "name": "graph-sim",
                                "link": "https://www.facebook.com/games/?app_id=0"}})]
                        } else {
                            Vec::new()
                        };
                        json!({"data": data})
                    }
                    _ => {
                        let data: Vec<_> = phone_number_ids(secret, id)
                            .iter()
                            .enumerate()
                            .map(|(i, number)| {
                                json!({"id": number,
                                "display_phone_number": format!("+1 555-010-{:04}", i + 1),
                                "verified_name": "graph-sim"})
                            })
                            .collect();
                        json!({"data": data})
                    }
                }
            }
        };
        self.live().calls.ok += 1;
        (Outcome::Ok, json_reply(StatusCode::OK, &reply))
    }

    /// `debug_token`'s `data` for `input`: an issued token by its state; any other token is
    /// valid forever in lenient mode, invalid in strict mode.
    fn debug_token(&self, input: &str, strict: bool) -> serde_json::Value {
        let now = super::now();
        let (valid, expires_at) = match issued(self.app_secret.expose_secret(), input) {
            Some(issued) => self.live().tenants.health(&issued, now),
            None => (!strict, 0),
        };
        let mut data = json!({
            "app_id": self.app_id,
            "type": "SYSTEM_USER",
            "application": "graph-sim",
            "is_valid": valid,
            "expires_at": expires_at,
            "data_access_expires_at": 0,
            "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
        });
        if !valid {
            data["error"] = json!({"code": 190, "subcode": 460, "message": INVALID_TOKEN});
        }
        json!({"data": data})
    }

    fn valid(&self, issued: &Issued) -> bool {
        self.live().tenants.health(issued, 0).0
    }

    fn invalid_token(&self) -> (Outcome, Reply) {
        self.live().calls.failed_permanent += 1;
        let reply = self.error(
            StatusCode::BAD_REQUEST,
            190,
            Some(460),
            INVALID_TOKEN,
            false,
        );
        (Outcome::FailedPermanent, reply)
    }

    fn refuse_subscription(&self) -> (Outcome, Reply) {
        self.live().calls.failed_permanent += 1;
        let message = "(#200) Permissions error (graph-sim refuses this subscription)";
        let reply = self.error(StatusCode::FORBIDDEN, 200, None, message, false);
        (Outcome::FailedPermanent, reply)
    }

    pub(super) fn reject(&self, code: i64, message: &str) -> (Outcome, Reply) {
        self.live().calls.rejected += 1;
        let reply = self.error(StatusCode::BAD_REQUEST, code, None, message, false);
        (Outcome::Rejected, reply)
    }
}
