//! `wa_envelope::verify` with arbitrary secrets, header bytes and body.
//!
//! Input layout: `[secret_len, header_len, secret.., header.., body..]` (lengths clamped to
//! what is there). Properties:
//! - `verify` never panics, and accepts a header only if it is `sha256=` followed by the HMAC
//!   of the body under one of the secrets (hex digits in either case);
//! - `sign` → `verify` always passes, alone and among rotated secrets;
//! - without the header it is `Missing`; without the `sha256=` prefix it is `Malformed`;
//! - a signature for a different secret or a different body is a `Mismatch`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_envelope::{SignatureError, sign, signature::PREFIX, verify};

fn take(data: &[u8], n: usize) -> (&[u8], &[u8]) {
    data.split_at(n.min(data.len()))
}

fuzz_target!(|data: &[u8]| {
    let [secret_len, header_len, rest @ ..] = data else {
        return;
    };
    let (secret, rest) = take(rest, usize::from(*secret_len));
    let (header, body) = take(rest, usize::from(*header_len));

    // Arbitrary header bytes.
    let result = verify(&[secret], Some(header), body);
    if result.is_ok() {
        let expected = sign(secret, body);
        assert!(
            header.eq_ignore_ascii_case(expected.as_bytes())
                && header.starts_with(PREFIX.as_bytes()),
            "accepted a header that is not the body's signature"
        );
    }
    if !header.starts_with(PREFIX.as_bytes()) {
        assert_eq!(result, Err(SignatureError::Malformed));
    }
    let no_secrets: [&[u8]; 0] = [];
    assert!(verify(&no_secrets, Some(header), body).is_err());
    assert_eq!(verify(&[secret], None, body), Err(SignatureError::Missing));

    // sign → verify always passes, alone, among rotated secrets, and in upper case.
    let good = sign(secret, body);
    assert_eq!(verify(&[secret], Some(good.as_bytes()), body), Ok(()));
    assert_eq!(
        verify(&[header, secret], Some(good.as_bytes()), body),
        Ok(())
    );
    let upper = format!("{PREFIX}{}", good[PREFIX.len()..].to_ascii_uppercase());
    assert_eq!(verify(&[secret], Some(upper.as_bytes()), body), Ok(()));

    // Another secret, or one more byte of body, does not verify (HMAC collisions aside).
    let mut other = secret.to_vec();
    other.push(0x5a);
    assert_eq!(
        verify(&[other.as_slice()], Some(good.as_bytes()), body),
        Err(SignatureError::Mismatch)
    );
    let mut longer = body.to_vec();
    longer.push(b' ');
    assert_eq!(
        verify(&[secret], Some(good.as_bytes()), &longer),
        Err(SignatureError::Mismatch)
    );
});
