//! Tenant checks (`wa.tenant_checks`): reading a check message, and the pure decisions of a
//! check — what `debug_token`'s answer asks for, whether our app is among the subscribed
//! ones, and what is left for `attention`. The Graph calls and Redis writes are
//! `crate::effects::check`'s.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wa_graph::TokenHealth;
use wa_ids::{DedupeKey, WabaId};
use wa_store::Attention;

use super::Rejected;

/// The routing key a check is published (and a dead-lettered one replayed) with, on the
/// webhooks exchange: no Meta object is called `tenant`.
pub const ROUTING_KEY: &str = "tenant.check";
/// The longest `reason` a check may give.
pub const MAX_REASON_LEN: usize = 64;

/// One queued check: `{"waba_id", "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckMessage {
    /// Dedupe key: from the AMQP `message_id` (unique per queued check), so a redelivery of a
    /// finished check is not run twice, and a later check of the same tenant is.
    pub id: DedupeKey,
    /// The tenant to check.
    pub waba_id: WabaId,
    /// Why it was queued (`scheduled`, `requested`, ...): for logs.
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    waba_id: String,
    reason: String,
}

impl CheckMessage {
    /// Reads a check message; `message_id` is its AMQP `message_id`.
    ///
    /// # Errors
    ///
    /// [`Rejected`] for a body that is not `{"waba_id", "reason"}` with a WABA id and a
    /// reason of 1 to [`MAX_REASON_LEN`] characters of `[a-z0-9_-]`.
    pub fn parse(body: &[u8], message_id: Option<&str>) -> Result<Self, Rejected> {
        let parsed: Body = serde_json::from_slice(body)
            .map_err(|e| Rejected(format!("not a tenant check: {e}")))?;
        let waba_id = super::id(parsed.waba_id, "waba_id")?;
        let reason_ok = (1..=MAX_REASON_LEN).contains(&parsed.reason.len())
            && parsed
                .reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !reason_ok {
            return Err(Rejected(format!(
                "reason must be 1 to {MAX_REASON_LEN} of [a-z0-9_-]"
            )));
        }
        let mut hash = Sha256::new();
        hash.update(b"tenant_check\0");
        match message_id {
            Some(id) => hash.update(id.as_bytes()),
            // Published by hand without an id: never deduplicated.
            None => hash.update(rand::random::<[u8; 16]>()),
        }
        let id = DedupeKey::parse(&hex::encode(hash.finalize()))
            .map_err(|e| Rejected(format!("dedupe key: {e}")))?;
        Ok(Self {
            id,
            waba_id,
            reason: parsed.reason,
        })
    }

    /// The body of a check of `waba_id` for `reason`.
    #[must_use]
    pub fn body(waba_id: &WabaId, reason: &str) -> Vec<u8> {
        serde_json::to_vec(&Body {
            waba_id: waba_id.as_str().to_owned(),
            reason: reason.to_owned(),
        })
        .unwrap_or_default()
    }
}

/// What `debug_token`'s answer asks of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Valid, and not expiring within the refresh window: record its expiry.
    Healthy {
        /// `0` = never; `None` = Graph did not say.
        expires_at: Option<i64>,
    },
    /// Valid but expiring within `WA_TOKEN_REFRESH_BEFORE`: fetch a new one.
    Expiring {
        /// When the current one expires.
        expires_at: i64,
    },
    /// Graph no longer accepts it.
    Invalid,
}

/// The verdict on `health` at `now` (unix seconds), refreshing what expires within
/// `refresh_before`.
#[must_use]
pub fn token_verdict(health: &TokenHealth, now: i64, refresh_before: Duration) -> TokenVerdict {
    let window = i64::try_from(refresh_before.as_secs()).unwrap_or(i64::MAX);
    if !health.is_valid {
        TokenVerdict::Invalid
    } else if health.expires_before(now.saturating_add(window)) {
        TokenVerdict::Expiring {
            expires_at: health.expires_at.unwrap_or_default(),
        }
    } else {
        TokenVerdict::Healthy {
            expires_at: health.expires_at,
        }
    }
}

/// Whether a refreshed token expiring at `fresh` (`0` = never) is better than the one it
/// replaces, expiring at `old` (`None`: unknown, as for a token known invalid): it must
/// expire later. The same token fetched again (Meta's `fetch_only=true`) is not, nor is
/// one whose expiry Graph did not say (`fresh` `None`) in place of one known to expire.
#[must_use]
pub fn refresh_gains(old: Option<i64>, fresh: Option<i64>) -> bool {
    match (old, fresh) {
        (None, _) => true,
        (Some(_), None) | (Some(0), _) => false,
        (Some(old), Some(fresh)) => fresh == 0 || fresh > old,
    }
}

/// Whether `app_id` is among `subscribed` (the ids `GET subscribed_apps` listed).
#[must_use]
pub fn is_subscribed(subscribed: &[String], app_id: &str) -> bool {
    subscribed.iter().any(|id| id == app_id)
}

/// The attention list after a check: `previous`, with `found` added and `fixed` removed.
/// Entries the check could not look at stay as they were.
#[must_use]
pub fn attention(
    previous: &[Attention],
    found: &[Attention],
    fixed: &[Attention],
) -> Vec<Attention> {
    let mut out: Vec<Attention> = previous
        .iter()
        .chain(found)
        .filter(|a| !fixed.contains(a) || found.contains(a))
        .copied()
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(is_valid: bool, expires_at: i64) -> TokenHealth {
        TokenHealth {
            is_valid,
            expires_at: Some(expires_at),
            app_id: None,
            error_code: None,
            error_subcode: None,
        }
    }

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn a_refresh_gains_only_a_later_expiry() {
        assert!(refresh_gains(None, Some(500)));
        assert!(refresh_gains(Some(100), Some(500)));
        assert!(
            refresh_gains(Some(100), Some(0)),
            "a token that never expires"
        );
        assert!(!refresh_gains(Some(100), Some(100)), "the same token again");
        assert!(!refresh_gains(Some(100), Some(90)));
        assert!(!refresh_gains(Some(100), None), "an unknown expiry");
    }

    #[test]
    fn a_token_expiring_within_the_window_is_refreshed_and_one_that_never_expires_is_not() {
        let now = 1_000_000;
        assert_eq!(
            token_verdict(&health(true, 0), now, WEEK),
            TokenVerdict::Healthy {
                expires_at: Some(0)
            }
        );
        let unknown = TokenHealth {
            expires_at: None,
            ..health(true, 0)
        };
        assert_eq!(
            token_verdict(&unknown, now, WEEK),
            TokenVerdict::Healthy { expires_at: None },
            "an unknown expiry skips the refresh decision"
        );
        assert_eq!(
            token_verdict(&health(true, now + 3600), now, WEEK),
            TokenVerdict::Expiring {
                expires_at: now + 3600
            }
        );
        let later = now + 8 * 24 * 3600;
        assert_eq!(
            token_verdict(&health(true, later), now, WEEK),
            TokenVerdict::Healthy {
                expires_at: Some(later)
            }
        );
        assert_eq!(
            token_verdict(&health(false, 0), now, WEEK),
            TokenVerdict::Invalid
        );
    }

    #[test]
    fn attention_keeps_what_was_not_looked_at_and_drops_what_was_fixed() {
        use Attention::*;
        assert_eq!(
            attention(&[NotSubscribed], &[TokenInvalid], &[]),
            [TokenInvalid, NotSubscribed]
        );
        assert_eq!(
            attention(&[NotSubscribed, TokenExpiring], &[], &[NotSubscribed]),
            [TokenExpiring]
        );
        assert_eq!(
            attention(&[], &[TokenExpiring], &[TokenExpiring]),
            [TokenExpiring]
        );
    }

    #[test]
    fn a_check_message_is_read_strictly_and_keyed_by_its_message_id() {
        let waba = WabaId::parse("102290129340398").unwrap();
        let body = CheckMessage::body(&waba, "scheduled");
        let a = CheckMessage::parse(&body, Some("m1")).unwrap();
        assert_eq!(
            (a.waba_id.as_str(), a.reason.as_str()),
            ("102290129340398", "scheduled")
        );
        assert_eq!(a.id, CheckMessage::parse(&body, Some("m1")).unwrap().id);
        assert_ne!(a.id, CheckMessage::parse(&body, Some("m2")).unwrap().id);
        for bad in [
            &br#"{"waba_id": "x/y", "reason": "r"}"#[..],
            br#"{"waba_id": "1", "reason": ""}"#,
            br#"{"waba_id": "1", "reason": "Bad Reason"}"#,
            br#"{"waba_id": "1", "reason": "r", "token": "t"}"#,
            b"[]",
        ] {
            assert!(CheckMessage::parse(bad, Some("m")).is_err());
        }
    }
}
