//! What each Graph call answers, read from its JSON reply: the business token, the
//! subscription's `success`, the phone number ids. A reply without what was promised is
//! [`GraphError::Malformed`]. Pure: no HTTP, never logs a token.

use secrecy::SecretString;
use serde_json::Value;
use wa_ids::PhoneNumberId;

use crate::{GraphError, Result, client::MAX_PHONE_NUMBERS};

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
    }
}
