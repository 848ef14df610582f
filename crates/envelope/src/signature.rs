//! `X-Hub-Signature-256`: `sha256=` followed by the lowercase hex HMAC-SHA256 of the raw body,
//! keyed by the app secret.
//!
//! Verification is over the bytes as received (re-serialised JSON would not match once the body
//! holds non-ASCII text or escaped characters) and compares MACs in constant time through
//! [`hmac::Mac::verify_slice`]. Every configured secret is tried, so an app secret can be
//! rotated without a window of rejected deliveries.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header prefix Meta uses for the SHA-256 signature.
pub const PREFIX: &str = "sha256=";

/// Why a delivery's signature was refused. The variants are metric labels, so they stay few.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("signature header missing")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("signature header malformed")]
    Malformed,
    /// Well-formed, but no configured secret produces it.
    #[error("signature does not match")]
    Mismatch,
}

impl SignatureError {
    /// A short, stable name for logs and metric labels.
    pub fn as_label(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Mismatch => "mismatch",
        }
    }
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac
}

/// The lowercase hex HMAC-SHA256 of `message` keyed by `secret`.
///
/// This is both the body signature (without its `sha256=` prefix) and Meta's
/// `appsecret_proof` (the access token signed with the app secret).
pub fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    hex::encode(mac(secret, message).finalize().into_bytes())
}

/// The full header value Meta would send for `body`: `sha256=<hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("{PREFIX}{}", hmac_hex(secret, body))
}

/// Checks `header` (the raw `X-Hub-Signature-256` value, if any) against `body` for each secret.
///
/// # Errors
///
/// [`SignatureError`] says whether the header was missing, malformed or simply wrong.
pub fn verify<S: AsRef<[u8]>>(
    secrets: &[S],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digits = header
        .strip_prefix(PREFIX.as_bytes())
        .ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut expected).map_err(|_| SignatureError::Malformed)?;
    // Try every secret, without stopping early, so the time taken does not say which matched.
    let mut matched = false;
    for secret in secrets {
        matched |= mac(secret.as_ref(), body).verify_slice(&expected).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = "{\"object\":\"x\",\"name\":\"Zoë @ café\"}".as_bytes();

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(b"s3cret", BODY);
        assert_eq!(verify(&["s3cret"], Some(header.as_bytes()), BODY), Ok(()));
    }

    #[test]
    fn known_vector_matches_openssl() {
        // printf 'hello' | openssl dgst -sha256 -hmac key
        assert_eq!(
            hmac_hex(b"key", b"hello"),
            "9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
        );
    }

    #[test]
    fn any_of_the_rotated_secrets_verifies() {
        let header = sign(b"new", BODY);
        assert_eq!(
            verify(&["old", "new"], Some(header.as_bytes()), BODY),
            Ok(())
        );
        assert_eq!(
            verify(&["old"], Some(header.as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn one_changed_byte_is_a_mismatch() {
        let header = sign(b"s3cret", BODY);
        let mut body = BODY.to_vec();
        body[3] ^= 1;
        assert_eq!(
            verify(&["s3cret"], Some(header.as_bytes()), &body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        let good = sign(b"s", BODY);
        assert_eq!(verify(&["s"], None, BODY), Err(SignatureError::Missing));
        for bad in [
            good.replace("sha256=", "sha1="),
            good[..good.len() - 2].to_string(),
            format!("{good}00"),
            good.replace(&good[7..9], "zz"),
            String::new(),
        ] {
            assert_eq!(
                verify(&["s"], Some(bad.as_bytes()), BODY),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn uppercase_hex_is_accepted_as_the_same_mac() {
        let header = sign(b"s", BODY)
            .to_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(verify(&["s"], Some(header.as_bytes()), BODY), Ok(()));
    }
}
