//! What each Graph call answers, read from its JSON reply: the business token, a token's
//! health, the subscription's `success`, the subscribed apps, the phone number ids. A reply without what was promised is
//! [`GraphError::Malformed`]. Pure: no HTTP, never logs a token.

use secrecy::SecretString;
use serde_json::Value;
use wa_ids::PhoneNumberId;

use crate::{GraphError, Result, TokenHealth, waba::MAX_PHONE_NUMBERS};

/// Most subscribed apps read for one WABA.
const MAX_SUBSCRIBED_APPS: usize = 100;

pub(crate) fn business_token(reply: Value) -> Result<SecretString> {
    match reply {
        Value::Object(mut map) => match map.remove("access_token") {
            Some(Value::String(token)) if !token.is_empty() => Ok(SecretString::from(token)),
            _ => Err(malformed("reply has no access_token")),
        },
        _ => Err(malformed("reply is not a JSON object")),
    }
}

pub(crate) fn phone_number_ids(reply: Value) -> Result<Vec<PhoneNumberId>> {
    let Some(Value::Array(data)) = reply.get("data") else {
        return Err(malformed("reply has no data list"));
    };
    data.iter()
        .take(MAX_PHONE_NUMBERS)
        .map(|entry| match entry.get("id") {
            Some(Value::String(id)) => {
                PhoneNumberId::parse(id).map_err(|_| malformed("a phone number id is malformed"))
            }
            _ => Err(malformed("a phone number has no id")),
        })
        .collect()
}

pub(crate) fn token_health(reply: Value) -> Result<TokenHealth> {
    let Some(data) = reply.get("data") else {
        return Err(malformed("reply has no data"));
    };
    let Some(is_valid) = data.get("is_valid").and_then(Value::as_bool) else {
        return Err(malformed("reply has no data.is_valid"));
    };
    let error = data.get("error");
    Ok(TokenHealth {
        is_valid,
        expires_at: data.get("expires_at").and_then(Value::as_i64),
        app_id: match data.get("app_id") {
            Some(Value::String(id)) => Some(id.chars().take(64).collect()),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        },
        error_code: error.and_then(|e| e.get("code")).and_then(Value::as_i64),
        error_subcode: error.and_then(|e| e.get("subcode")).and_then(Value::as_i64),
    })
}

pub(crate) fn subscribed_app_ids(reply: Value) -> Result<Vec<String>> {
    let Some(Value::Array(data)) = reply.get("data") else {
        return Err(malformed("reply has no data list"));
    };
    data.iter()
        .take(MAX_SUBSCRIBED_APPS)
        .map(|entry| {
            match entry
                .get("whatsapp_business_api_data")
                .and_then(|d| d.get("id"))
            {
                Some(Value::String(id)) if id.len() <= 64 => Ok(id.clone()),
                _ => Err(malformed("a subscribed app has no id")),
            }
        })
        .collect()
}

pub(crate) fn subscribed(reply: Value) -> Result<()> {
    match reply.get("success") {
        Some(Value::Bool(true)) => Ok(()),
        Some(_) => Err(malformed("reply has success other than true")),
        None => Err(malformed("reply has no success")),
    }
}

pub(crate) fn malformed(message: &str) -> GraphError {
    GraphError::Malformed {
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_without_the_promised_field_are_malformed() {
        assert!(business_token(serde_json::json!({"access_token": ""})).is_err());
        assert!(business_token(serde_json::json!([])).is_err());
        assert!(subscribed(serde_json::json!({"success": false})).is_err());
        assert!(subscribed(serde_json::json!({"success": true})).is_ok());
        assert!(phone_number_ids(serde_json::json!({})).is_err());
        assert!(phone_number_ids(serde_json::json!({"data": [{"id": "x/y"}]})).is_err());
        let ids = phone_number_ids(serde_json::json!({"data": [{"id": "1"}, {"id": "2"}]}));
        assert_eq!(ids.unwrap().len(), 2);
        assert!(token_health(serde_json::json!({"data": {}})).is_err());
        let health = token_health(serde_json::json!({"data": {"is_valid": false,
            "expires_at": 0, "error": {"code": 190, "subcode": 460}}}))
        .unwrap();
        assert!(!health.is_valid);
        assert_eq!(health.expires_at, Some(0));
        for data in [
            json!({"is_valid": true}),
            json!({"is_valid": true, "expires_at": null}),
        ] {
            let health = token_health(json!({ "data": data })).unwrap();
            assert_eq!(health.expires_at, None, "unknown, not never");
        }
        assert_eq!(
            (health.error_code, health.error_subcode),
            (Some(190), Some(460))
        );
        let apps = subscribed_app_ids(serde_json::json!({"data": [
            {"whatsapp_business_api_data": {"id": "77", "name": "x"}}]}));
        assert_eq!(apps.unwrap(), ["77"]);
        assert!(subscribed_app_ids(serde_json::json!({"data": [{}]})).is_err());
    }
}
