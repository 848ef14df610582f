//! Typed identifiers, each parsed once at the edge with one rule.
//!
//! What this crate owns: the rule for every identifier wa-onboard accepts from outside —
//! Meta's object ids ([`WabaId`], [`BusinessId`], [`AppId`], [`PhoneNumberId`],
//! [`SolutionId`], [`SystemUserId`], [`ConfigId`]), Embedded Signup [`SessionId`]s and change
//! [`DedupeKey`]s. A value of one of these types has passed its rule, so the envelope, the
//! store (which embeds ids in Redis keys and hash tags), the Graph client (which puts them in
//! URL paths), the worker, the API and the CLI never check again and can never disagree.
//!
//! It never touches I/O and depends on nothing of ours: every other crate may use it.
//!
//! The rules (docs/REFERENCE.md, "Identifiers"):
//! - a Meta object id is 1 to 32 ASCII digits (Graph ids are decimal numbers);
//! - a signup session id is 1 to 128 of `[A-Za-z0-9_.:-]`;
//! - a dedupe key is 64 lowercase hex digits (a SHA-256).

use std::{borrow::Borrow, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest Meta object id accepted.
pub const MAX_GRAPH_ID_LEN: usize = 32;
/// Longest signup session id accepted.
pub const MAX_SESSION_ID_LEN: usize = 128;
/// Length of a dedupe key: hex of a SHA-256.
pub const DEDUPE_KEY_LEN: usize = 64;

/// Why a string is not an identifier of the kind asked for. The message names the kind and
/// the rule; it echoes at most the first 64 characters of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {shown:?} is not valid: {rule}")]
pub struct IdError {
    /// Which identifier was being parsed (`waba_id`, `session_id`, ...).
    pub kind: &'static str,
    /// The rule it broke.
    pub rule: &'static str,
    shown: String,
}

impl IdError {
    fn new(kind: &'static str, rule: &'static str, value: &str) -> Self {
        Self {
            kind,
            rule,
            shown: value.chars().take(64).collect(),
        }
    }
}

fn graph_id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_GRAPH_ID_LEN && s.bytes().all(|b| b.is_ascii_digit())
}

fn session_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SESSION_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn dedupe_key_ok(s: &str) -> bool {
    s.len() == DEDUPE_KEY_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

const GRAPH_RULE: &str = "must be 1 to 32 ASCII digits";
const SESSION_RULE: &str = "must be 1 to 128 of [A-Za-z0-9_.:-]";
const DEDUPE_RULE: &str = "must be 64 lowercase hex digits";

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $ok:ident, $rule:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name used in errors and in docs/REFERENCE.md.
            pub const KIND: &'static str = $kind;

            /// Parses `value` by this identifier's rule.
            ///
            /// # Errors
            ///
            /// [`IdError`] naming the kind and the rule when `value` breaks it.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                if $ok(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdError::new($kind, $rule, value))
                }
            }

            /// The identifier as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned `String`.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                if $ok(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError::new($kind, $rule, &value))
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A WhatsApp Business Account id: the tenant's identity.
    WabaId, "waba_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// A Meta business portfolio id (a customer's owner business, or the partner's own).
    BusinessId, "business_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// A Meta app id (`WA_APP_ID`, `waba_info.partner_app_id`).
    AppId, "app_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// A WhatsApp phone number id.
    PhoneNumberId, "phone_number_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// A Multi-Partner Solution id (`waba_info.solution_id`).
    SolutionId, "solution_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// The partner's system user id (`WA_SYSTEM_USER_ID`).
    SystemUserId, "system_user_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// A Facebook Login for Business configuration id (`WA_SIGNUP_CONFIG_ID`), which launches
    /// Embedded Signup.
    ConfigId, "config_id", graph_id_ok, GRAPH_RULE
);
id_type!(
    /// An Embedded Signup session id, as the browser's `postMessage` carried it.
    SessionId, "session_id", session_id_ok, SESSION_RULE
);
id_type!(
    /// A change's dedupe key: lowercase hex SHA-256 of its identity (docs/REFERENCE.md,
    /// "Messages").
    DedupeKey, "dedupe_key", dedupe_key_ok, DEDUPE_RULE
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_ids_are_decimal_digits() {
        assert_eq!(
            WabaId::parse("102290129340398").unwrap().as_str(),
            "102290129340398"
        );
        for bad in ["", "12a", "1{2}", " 1", "-1", "１２", &"9".repeat(33)] {
            let e = WabaId::parse(bad).unwrap_err();
            assert_eq!(e.kind, "waba_id", "{bad:?}");
        }
        assert!(BusinessId::parse(&"9".repeat(32)).is_ok());
    }

    #[test]
    fn errors_name_the_kind_and_the_rule_and_bound_the_echo() {
        let e = PhoneNumberId::parse(&"x".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("phone_number_id \""), "{e}");
        assert!(e.ends_with(GRAPH_RULE), "{e}");
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn session_ids_allow_their_punctuation_only() {
        assert!(SessionId::parse("a-b_c.d:e9").is_ok());
        for bad in ["", "a b", "a/b", "a{b}", &"a".repeat(129)] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dedupe_keys_are_sha256_hex() {
        assert!(DedupeKey::parse(&"ab".repeat(32)).is_ok());
        assert!(DedupeKey::parse(&"AB".repeat(32)).is_err());
        assert!(DedupeKey::parse("ab").is_err());
    }

    #[test]
    fn serde_applies_the_rule() {
        let id: WabaId = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"42\"");
        assert!(serde_json::from_str::<WabaId>("\"4x\"").is_err());
    }
}
