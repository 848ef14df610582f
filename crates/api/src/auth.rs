//! Who may call the API: the `name:token` pairs of `WA_API_TOKENS`, and checking a request's
//! `Authorization: Bearer` against them.
//!
//! Owns parsing the list (names unique, tokens distinct and at least [`MIN_TOKEN_LEN`]
//! characters) and the comparison. Tokens are kept only as SHA-256 digests; a presented
//! bearer is hashed and compared with every configured digest in constant time, without
//! stopping at the first match, so neither which caller matched, nor a token's bytes or
//! length, show in the time an answer takes. It never logs a token.

use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::ApiError;

/// The shortest token accepted: a shared secret between two services.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest caller name: it is a metric label value and a log field.
pub const MAX_NAME_LEN: usize = 64;

/// One configured caller.
struct Caller {
    name: String,
    digest: [u8; 32],
}

/// The callers of `WA_API_TOKENS`. Holds no token, only digests.
pub struct Callers {
    callers: Vec<Caller>,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::Tokens(reason.into())
}

impl Callers {
    /// Parses `WA_API_TOKENS`: comma-separated `name:token` pairs. A name is 1 to
    /// [`MAX_NAME_LEN`] of `[A-Za-z0-9_.-]` and unique; a token is at least [`MIN_TOKEN_LEN`]
    /// characters without white space or commas, and no two callers share one.
    ///
    /// # Errors
    ///
    /// [`ApiError::Tokens`], saying what is wrong and naming the entry by its position, never
    /// by its text.
    pub fn parse(list: &str) -> Result<Self, ApiError> {
        let mut callers: Vec<Caller> = Vec::new();
        for (i, pair) in list.split(',').map(str::trim).enumerate() {
            if pair.is_empty() {
                continue;
            }
            let Some((name, token)) = pair.split_once(':') else {
                return Err(bad(format!("entry {} is not `name:token`", i + 1)));
            };
            if name.is_empty()
                || name.len() > MAX_NAME_LEN
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            {
                return Err(bad(format!(
                    "entry {}: a name is 1 to {MAX_NAME_LEN} of [A-Za-z0-9_.-]",
                    i + 1
                )));
            }
            // Errors name an entry by its position, never by its text: an entry written the
            // wrong way round (`token:name`) would otherwise print the token.
            if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
                return Err(bad(format!(
                    "entry {}: the token must be at least {MIN_TOKEN_LEN} characters, without \
                     white space (e.g. `openssl rand -hex 32`)",
                    i + 1
                )));
            }
            if let Some(first) = callers.iter().position(|c| c.name == name) {
                return Err(bad(format!(
                    "entry {}: its name is already the name of entry {}",
                    i + 1,
                    first + 1
                )));
            }
            let digest = digest(token.as_bytes());
            if let Some(other) = callers.iter().position(|c| c.digest == digest) {
                return Err(bad(format!(
                    "entries {} and {} share a token: each caller needs its own",
                    other + 1,
                    i + 1
                )));
            }
            callers.push(Caller {
                name: name.to_owned(),
                digest,
            });
        }
        if callers.is_empty() {
            return Err(bad("no `name:token` pair"));
        }
        Ok(Self { callers })
    }

    /// The configured names, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.callers.iter().map(|c| c.name.as_str())
    }

    /// The caller whose token `authorization` carries (`Bearer <token>`, scheme
    /// case-insensitive), if any.
    #[must_use]
    pub fn authenticate(&self, authorization: Option<&HeaderValue>) -> Option<&str> {
        let presented = bearer(authorization)?;
        let given = digest(presented);
        // 0 = none; i + 1 = caller i. Every digest is compared, whatever matched before.
        let mut matched = 0u32;
        for (i, caller) in (1u32..).zip(&self.callers) {
            let equal = given.ct_eq(&caller.digest);
            matched = u32::conditional_select(&matched, &i, equal);
        }
        let index = usize::try_from(matched.checked_sub(1)?).ok()?;
        self.callers.get(index).map(|c| c.name.as_str())
    }
}

/// The credentials of `Bearer <credentials>`, if the header is that.
fn bearer(authorization: Option<&HeaderValue>) -> Option<&[u8]> {
    let value = authorization?.as_bytes();
    let value = value.trim_ascii();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let credentials = rest.trim_ascii();
    (!credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn each_token_names_its_caller() {
        let callers =
            Callers::parse("billing:billing-token-0123456789, crm:crm-token-0123456789abc")
                .unwrap();
        let who = |v: &str| callers.authenticate(Some(&header(v)));
        assert_eq!(who("Bearer billing-token-0123456789"), Some("billing"));
        assert_eq!(who("bearer crm-token-0123456789abc"), Some("crm"));
        assert_eq!(who("Bearer  crm-token-0123456789abc "), Some("crm"));
        assert_eq!(who("Bearer billing-token-012345678"), None);
        assert_eq!(who("Bearer billing-token-01234567890"), None);
        assert_eq!(who("Basic billing-token-0123456789"), None);
        assert_eq!(who("billing-token-0123456789"), None);
        assert_eq!(who("Bearer "), None);
        assert_eq!(callers.authenticate(None), None);
        assert_eq!(callers.names().collect::<Vec<_>>(), ["billing", "crm"]);
    }

    #[test]
    fn bad_lists_are_refused_without_echoing_a_token() {
        for (list, says) in [
            ("", "no `name:token`"),
            (" , ", "no `name:token`"),
            ("billing", "not `name:token`"),
            ("billing:short", "at least 16"),
            (":0123456789abcdef0", "a name is"),
            ("bad name:0123456789abcdef0", "a name is"),
            (
                "a:0123456789abcdef0,a:0123456789abcdef1",
                "already the name of entry 1",
            ),
            ("a:0123456789abcdef0,b:0123456789abcdef0", "share a token"),
            ("a:0123456789 abcdef0", "white space"),
            // Written the wrong way round: the token sits where the name goes.
            ("0123456789abcdef0:billing", "entry 1: the token must be"),
        ] {
            let err = Callers::parse(list).unwrap_err().to_string();
            assert!(err.contains(says), "{list:?}: {err}");
            assert!(!err.contains("0123456789abcdef"), "{list:?}: {err}");
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let callers = Callers::parse("billing:billing-token-0123456789").unwrap();
        let shown = format!("{callers:?}");
        assert!(shown.contains("billing"));
        assert!(!shown.contains("billing-token"));
    }
}
