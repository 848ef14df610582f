//! How the simulator answers: Graph's error envelope, JSON replies, request parameters, and
//! the phone numbers it lists for a WABA. No routing (that is `super`), no state beyond the
//! `fbtrace_id` sequence.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;
use wa_envelope::signature::hmac_hex;

use super::{Reply, State};

impl State {
    /// Graph's error envelope, with a fresh `fbtrace_id`.
    pub(super) fn error(
        &self,
        status: StatusCode,
        code: i64,
        subcode: Option<i64>,
        message: &str,
        transient: bool,
    ) -> Reply {
        let fbtrace_id = {
            let mut live = self.live();
            live.trace_seq += 1;
            format!("SIM{:08}", live.trace_seq)
        };
        let error_type = if code == 190 {
            "OAuthException"
        } else {
            "GraphMethodException"
        };
        let mut error = json!({
            "message": message,
            "type": error_type,
            "code": code,
            "fbtrace_id": fbtrace_id,
        });
        if let Some(subcode) = subcode {
            error["error_subcode"] = json!(subcode);
        }
        if transient {
            error["is_transient"] = json!(true);
        }
        json_reply(status, &json!({ "error": error }))
    }
}

/// The phone number ids `phone_numbers` lists for `waba_id`: two 15-digit ids derived from
/// an HMAC of the WABA id under `app_secret`, so the same on every call and restart.
#[must_use]
pub fn phone_number_ids(app_secret: &str, waba_id: &str) -> [String; 2] {
    [1, 2].map(|n| {
        let mac = hmac_hex(
            app_secret.as_bytes(),
            format!("phone:{waba_id}:{n}").as_bytes(),
        );
        let low = u64::from_str_radix(&mac[..12], 16).unwrap_or(0) % 900_000_000_000_000;
        (100_000_000_000_000 + low).to_string()
    })
}

pub(super) fn parse_params(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

pub(super) fn json_reply(status: StatusCode, body: &impl Serialize) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut reply = Response::new(Full::new(Bytes::from(bytes)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    reply
}
