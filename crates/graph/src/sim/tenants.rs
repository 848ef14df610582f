//! What the simulator remembers of tokens and subscriptions, switchable at run time for
//! tests and demos: a business's token that expires soon, a token Meta no longer accepts, a
//! WABA our app was removed from (and one where subscribing again is refused).
//!
//! Tokens are derived, never stored: `sim-<business_id>-<mac>` for a business's first token,
//! `sim-<business_id>-g<n>-<mac>` for its `n`-th re-issue, the mac an HMAC of the business id
//! (and `n`) under the app secret. So a restarted simulator with the same secret still
//! recognises every token it issued. Owns only this state; never sees HTTP.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use wa_envelope::signature::hmac_hex;

/// Most businesses or WABAs one switch set may name: the control routes are bounded too.
const MAX_SWITCHED: usize = 100_000;
/// How long a token switched to `expiring` still has: one hour.
pub(super) const EXPIRING_IN: i64 = 3600;
/// How long a re-issued token lives: Meta's "60 Expiration Token" template, 60 days.
pub(super) const REISSUED_LIFETIME: i64 = 60 * 24 * 3600;

/// A `POST /_sim/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenSwitch {
    pub(super) business_id: String,
    pub(super) state: TokenState,
}

/// What a business's current token is switched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum TokenState {
    /// Valid; never expires unless it is a re-issue.
    Valid,
    /// Expires within [`EXPIRING_IN`]; the next fetch issues a new token.
    Expiring,
    /// Expires within [`EXPIRING_IN`], and every fetch hands back that same token (what
    /// Meta's `fetch_only=true` may do): a refresh that gains nothing.
    ExpiringStuck,
    /// `debug_token` says invalid and every call with it answers `190`.
    Invalid,
}

/// A `POST /_sim/subscriptions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriptionSwitch {
    pub(super) waba_id: String,
    /// `false`: our app is no longer subscribed to the WABA.
    pub(super) subscribed: bool,
    /// `true`: subscribing again answers a permanent error (code 200).
    #[serde(default)]
    pub(super) refuse: bool,
}

/// A token the simulator issued, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issued {
    pub(super) business_id: String,
    pub(super) generation: u32,
}

#[derive(Debug, Default)]
pub(super) struct Tenants {
    /// The current token generation of each business (absent: 0).
    generation: HashMap<String, u32>,
    /// Businesses whose current token expires soon, with that expiry (fixed at the switch,
    /// as a real token's is: asking again never moves it).
    expiring: HashMap<String, i64>,
    /// Businesses whose current token expires soon and is fetched again unchanged.
    stuck: HashMap<String, i64>,
    /// When each reissued token (generation above 0) expires, fixed at its fetch.
    reissued_expiry: HashMap<String, i64>,
    /// Businesses whose current token is invalid.
    invalid: HashSet<String>,
    /// WABAs our app is not subscribed to.
    unsubscribed: HashSet<String>,
    /// WABAs where subscribing is refused.
    refused: HashSet<String>,
}

impl Tenants {
    /// Applies a token switch made at `now`; `false` when the switch sets are full.
    pub(super) fn switch_token(&mut self, switch: TokenSwitch, now: i64) -> bool {
        let b = switch.business_id;
        self.expiring.remove(&b);
        self.stuck.remove(&b);
        self.invalid.remove(&b);
        let soon = match switch.state {
            TokenState::Valid => return true,
            TokenState::Invalid => return insert_bounded(&mut self.invalid, b),
            TokenState::Expiring => &mut self.expiring,
            TokenState::ExpiringStuck => &mut self.stuck,
        };
        if soon.len() >= MAX_SWITCHED {
            return false;
        }
        soon.insert(b, now + EXPIRING_IN);
        true
    }

    /// Applies a subscription switch; `false` when the switch sets are full.
    pub(super) fn switch_subscription(&mut self, switch: SubscriptionSwitch) -> bool {
        let w = switch.waba_id;
        self.refused.remove(&w);
        if switch.subscribed {
            self.unsubscribed.remove(&w);
        } else if !insert_bounded(&mut self.unsubscribed, w.clone()) {
            return false;
        }
        !switch.refuse || insert_bounded(&mut self.refused, w)
    }

    /// The generation a fetch for `business_id` at `now` issues: a new one, expiring
    /// [`REISSUED_LIFETIME`] later, when the current token is switched to expiring (the
    /// switch then applies to the old token only).
    pub(super) fn fetch(&mut self, business_id: &str, now: i64) -> u32 {
        let current = self.generation.get(business_id).copied().unwrap_or(0);
        if self.expiring.remove(business_id).is_none() {
            return current;
        }
        let next = current.saturating_add(1);
        if self.generation.len() < MAX_SWITCHED || self.generation.contains_key(business_id) {
            self.generation.insert(business_id.to_owned(), next);
            self.reissued_expiry
                .insert(business_id.to_owned(), now + REISSUED_LIFETIME);
        }
        next
    }

    /// `(valid, expires_at)` of an issued token at `now`.
    pub(super) fn health(&self, issued: &Issued, now: i64) -> (bool, i64) {
        let b = &issued.business_id;
        let current = self.generation.get(b).copied().unwrap_or(0);
        let valid = !(issued.generation == current && self.invalid.contains(b));
        let soon = self.expiring.get(b).or_else(|| self.stuck.get(b));
        let expires_at = match soon {
            Some(&at) if issued.generation == current => at,
            _ if issued.generation > 0 => self
                .reissued_expiry
                .get(b)
                .copied()
                .unwrap_or(now + REISSUED_LIFETIME),
            _ => 0,
        };
        (valid, expires_at)
    }

    /// Whether our app is subscribed to `waba_id`.
    pub(super) fn subscribed(&self, waba_id: &str) -> bool {
        !self.unsubscribed.contains(waba_id)
    }

    /// Subscribes our app to `waba_id`; `false` when that is refused.
    pub(super) fn subscribe(&mut self, waba_id: &str) -> bool {
        if self.refused.contains(waba_id) {
            return false;
        }
        self.unsubscribed.remove(waba_id);
        true
    }
}

fn insert_bounded(set: &mut HashSet<String>, value: String) -> bool {
    if set.len() >= MAX_SWITCHED && !set.contains(&value) {
        return false;
    }
    set.insert(value);
    true
}

/// The token of `business_id`'s `generation`.
pub(super) fn token(app_secret: &str, business_id: &str, generation: u32) -> String {
    if generation == 0 {
        let mac = hmac_hex(app_secret.as_bytes(), business_id.as_bytes());
        return format!("sim-{business_id}-{}", &mac[..16]);
    }
    let mac = hmac_hex(
        app_secret.as_bytes(),
        format!("{business_id}:{generation}").as_bytes(),
    );
    format!("sim-{business_id}-g{generation}-{}", &mac[..16])
}

/// The business and generation of a token this simulator issued; `None` for any other.
pub(super) fn issued(app_secret: &str, token: &str) -> Option<Issued> {
    let rest = token.strip_prefix("sim-")?;
    let (head, _mac) = rest.rsplit_once('-')?;
    let (business_id, generation) = match head.split_once("-g") {
        Some((b, g)) => (b, g.parse().ok()?),
        None => (head, 0),
    };
    (self::token(app_secret, business_id, generation) == token).then(|| Issued {
        business_id: business_id.to_owned(),
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_recognised_with_their_generation() {
        for generation in [0, 3] {
            let t = token("s", "42", generation);
            let issued = issued("s", &t).expect("issued");
            assert_eq!(
                (issued.business_id.as_str(), issued.generation),
                ("42", generation)
            );
        }
        assert!(issued("other", &token("s", "42", 0)).is_none());
        assert!(issued("s", "sim-42-g1-0000").is_none());
    }

    #[test]
    fn an_expiring_token_is_replaced_at_the_next_fetch() {
        let mut t = Tenants::default();
        assert_eq!(t.fetch("7", 100), 0);
        assert!(t.switch_token(
            TokenSwitch {
                business_id: "7".into(),
                state: TokenState::Expiring
            },
            100
        ));
        let old = Issued {
            business_id: "7".into(),
            generation: 0,
        };
        assert_eq!(t.health(&old, 100), (true, 100 + EXPIRING_IN));
        assert_eq!(t.fetch("7", 100), 1);
        let new = Issued {
            business_id: "7".into(),
            generation: 1,
        };
        assert_eq!(t.health(&new, 100), (true, 100 + REISSUED_LIFETIME));
        assert_eq!(t.health(&new, 101), (true, 100 + REISSUED_LIFETIME));
        assert_eq!(
            t.fetch("7", 100),
            1,
            "a fetch without the switch keeps the token"
        );
    }

    #[test]
    fn a_stuck_token_stays_expiring_and_is_fetched_unchanged() {
        let mut t = Tenants::default();
        assert!(t.switch_token(
            TokenSwitch {
                business_id: "8".into(),
                state: TokenState::ExpiringStuck
            },
            100
        ));
        let old = Issued {
            business_id: "8".into(),
            generation: 0,
        };
        assert_eq!(t.fetch("8", 100), 0, "the same token again");
        assert_eq!(t.fetch("8", 100), 0);
        assert_eq!(t.health(&old, 100), (true, 100 + EXPIRING_IN));
        assert_eq!(
            t.health(&old, 101),
            (true, 100 + EXPIRING_IN),
            "a token's expiry does not move when asked again later"
        );
    }
}
