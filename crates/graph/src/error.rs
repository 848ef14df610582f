//! [`GraphError`]: what can go wrong talking to Graph, Meta's error envelope parsed from a
//! bounded body, and the transient/permanent classification of docs/REFERENCE.md ("Graph API
//! calls"), with the server's back-off hint.
//!
//! Every message that ends up in an error is bounded, single-line and scrubbed of the tokens
//! and proofs of the request that produced it, so `Display` and [`GraphError::summary`] are
//! safe to log and to store in the tenant record.

use std::{fmt::Write as _, time::Duration};

use http::{HeaderMap, StatusCode};
use serde_json::Value;

/// The crate's result type.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;

/// Graph error codes that are worth retrying (docs/REFERENCE.md, "Graph API calls"): service
/// hiccups and rate limits.
pub const TRANSIENT_CODES: &[i64] = &[
    1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131057,
];

/// Graph error codes that no retry will fix (docs/REFERENCE.md, "Graph API calls"): invalid
/// token or app removed (190), permissions (10, 200), bad parameters (100), and the like.
pub const PERMANENT_CODES: &[i64] = &[10, 100, 190, 200, 452, 3962];

/// Longest error message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;
/// Longest back-off hint believed (a day); anything longer is clamped.
const MAX_HINT: Duration = Duration::from_secs(24 * 60 * 60);
/// What replaces a secret found in a message.
const REDACTED: &str = "[redacted]";

/// Why a Graph call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status or an error envelope.
    #[error("{}", api_summary(*.status, *.code, *.subcode, .message, .error_type.as_deref(), .fbtrace_id.as_deref()))]
    Api {
        /// HTTP status of the answer.
        status: u16,
        /// `error.code`, when the body carried one.
        code: Option<i64>,
        /// `error.error_subcode`, when the body carried one.
        subcode: Option<i64>,
        /// `error.message`, or a description of the answer when it had no Graph error body.
        message: String,
        /// `error.type`, e.g. `OAuthException`.
        error_type: Option<String>,
        /// `error.fbtrace_id` (or the `x-fb-trace-id` header): quote it to Meta support.
        fbtrace_id: Option<String>,
        /// Whether retrying later may succeed (see [`classify`]).
        transient: bool,
        /// How long the server asked us to wait, for transient errors that said so.
        retry_after: Option<Duration>,
    },
    /// No HTTP answer: connect, TLS, timeout or a body cut short. Always transient.
    #[error("Graph network error: {message}")]
    Network {
        /// What happened, built from `reqwest::Error::without_url` so no URL (and so no query
        /// string with a token) is ever part of it.
        message: String,
    },
    /// A 2xx answer without what the call promises (`access_token`, `success: true`), or too
    /// large to read. Transient: both calls are idempotent, and a glitch in front of Graph is
    /// likelier than a contract change; if it persists the caller's delay tiers end in the DLQ.
    #[error("malformed Graph reply: {message}")]
    Malformed {
        /// What was wrong with the reply (never its content).
        message: String,
    },
    /// The client was given something unusable (base URL, empty secret, an id that is not a
    /// Graph id). Permanent.
    #[error("Graph client configuration error: {0}")]
    Config(String),
}

impl GraphError {
    /// Whether a later retry may succeed: `Api { transient: true }`, `Network`, `Malformed`.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { transient, .. } => *transient,
            Self::Network { .. } | Self::Malformed { .. } => true,
            Self::Config(_) => false,
        }
    }

    /// How long the server asked us to wait before the next try, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Graph's `error.code`, when there was one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// Graph's `error.error_subcode`, when there was one.
    pub fn subcode(&self) -> Option<i64> {
        match self {
            Self::Api { subcode, .. } => *subcode,
            _ => None,
        }
    }

    /// Graph says the app is not installed for the asset: code 190 with subcode 458
    /// ("the user has not authorized application"). Proof, unlike `entry.time`, that an
    /// uninstall stands.
    pub fn app_not_installed(&self) -> bool {
        self.code() == Some(190) && self.subcode() == Some(458)
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Meta's trace id of the failed request, when there was one.
    pub fn fbtrace_id(&self) -> Option<&str> {
        match self {
            Self::Api { fbtrace_id, .. } => fbtrace_id.as_deref(),
            _ => None,
        }
    }

    /// One line for the tenant record's `token.error`: message, code, subcode, type, HTTP
    /// status and fbtrace_id. Never holds a token or proof; bounded in length.
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// A short, stable label for metrics and span fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Api {
                transient: true, ..
            } => "api_transient",
            Self::Api { .. } => "api_permanent",
            Self::Network { .. } => "network",
            Self::Malformed { .. } => "malformed",
            Self::Config(_) => "config",
        }
    }

    /// Replaces every occurrence of `secrets` in the error's text. Graph does not echo tokens
    /// today; this makes sure a proxy page or a future message cannot make us log one.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        let texts: Vec<&mut String> = match &mut self {
            Self::Api {
                message,
                error_type,
                fbtrace_id,
                ..
            } => [Some(message), error_type.as_mut(), fbtrace_id.as_mut()]
                .into_iter()
                .flatten()
                .collect(),
            Self::Network { message } | Self::Malformed { message } | Self::Config(message) => {
                vec![message]
            }
        };
        for text in texts {
            scrub(text, secrets);
        }
        self
    }
}

/// Replaces every non-empty one of `secrets` in `text`.
fn scrub(text: &mut String, secrets: &[&str]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret) {
            *text = text.replace(secret, REDACTED);
        }
    }
}

fn api_summary(
    status: u16,
    code: Option<i64>,
    subcode: Option<i64>,
    message: &str,
    error_type: Option<&str>,
    fbtrace_id: Option<&str>,
) -> String {
    let mut out = format!("Graph API error: {message} (");
    if let Some(code) = code {
        let _ = write!(out, "code {code}, ");
    }
    if let Some(subcode) = subcode {
        let _ = write!(out, "subcode {subcode}, ");
    }
    if let Some(error_type) = error_type {
        let _ = write!(out, "{error_type}, ");
    }
    let _ = write!(out, "HTTP {status}");
    if let Some(id) = fbtrace_id {
        let _ = write!(out, ", fbtrace_id {id}");
    }
    out.push(')');
    out
}

/// Whether an error answer is transient, by this rule (first match wins):
///
/// 1. `is_transient: true` in the body: transient (Meta says so).
/// 2. a code in [`TRANSIENT_CODES`]: transient, whatever the status (a 400 with code 4 is a
///    rate limit).
/// 3. a code in [`PERMANENT_CODES`]: permanent, whatever the status (a 500 with code 190 is
///    still an invalid token; retrying cannot fix it).
/// 4. HTTP 5xx or 429: transient.
/// 5. anything else (other 4xx, unknown codes on a 4xx, odd statuses): permanent.
///
/// `is_transient: false` carries no weight of its own: the code and status decide.
pub fn classify(status: u16, code: Option<i64>, is_transient: Option<bool>) -> bool {
    if is_transient == Some(true) {
        return true;
    }
    if let Some(code) = code {
        if TRANSIENT_CODES.contains(&code) {
            return true;
        }
        if PERMANENT_CODES.contains(&code) {
            return false;
        }
    }
    status >= 500 || status == 429
}

/// Builds the [`GraphError::Api`] for an answer with status `status`, its headers and (a
/// bounded prefix of) its body.
///
/// Tolerates what proxies and odd Graph answers send: a non-JSON body, `error` as a bare
/// string, codes as strings, missing fields. `retry_after` is set only for transient errors,
/// from `Retry-After` (seconds) or `X-Business-Use-Case-Usage`'s largest
/// `estimated_time_to_regain_access` (minutes), whichever is longer.
pub fn parse_error(status: u16, headers: &HeaderMap, body: &[u8]) -> GraphError {
    parse_error_redacted(status, headers, body, &[])
}

/// [`parse_error`], with every one of `secrets` replaced in Graph's message *before* it is
/// cut to its bound: a secret echoed across the cut cannot leave its prefix behind.
pub(crate) fn parse_error_redacted(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> GraphError {
    let envelope = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("error").map(Value::take));
    let (mut message, mut code, mut subcode, mut error_type, mut fbtrace_id, mut is_transient) =
        (None, None, None, None, None, None);
    match envelope {
        Some(Value::Object(e)) => {
            message = e.get("message").and_then(text);
            code = e.get("code").and_then(integer);
            subcode = e.get("error_subcode").and_then(integer);
            error_type = e.get("type").and_then(text).map(|t| clean(&t, 100));
            fbtrace_id = e.get("fbtrace_id").and_then(text).map(|t| clean(&t, 100));
            is_transient = e.get("is_transient").and_then(boolean);
        }
        Some(Value::String(s)) => message = Some(s),
        _ => {}
    }
    if fbtrace_id.is_none() {
        fbtrace_id = headers
            .get("x-fb-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(|t| clean(t, 100));
    }
    let message = match message {
        Some(mut m) if !m.trim().is_empty() => {
            scrub(&mut m, secrets);
            clean(&m, MAX_MESSAGE_CHARS)
        }
        _ => {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unknown status");
            format!("HTTP {status} {reason} without a Graph error body")
        }
    };
    let transient = classify(status, code, is_transient);
    GraphError::Api {
        status,
        code,
        subcode,
        message,
        error_type,
        fbtrace_id,
        transient,
        retry_after: if transient {
            server_hint(headers)
        } else {
            None
        },
    }
}

/// The longer of `Retry-After` and `X-Business-Use-Case-Usage`'s time to regain access.
fn server_hint(headers: &HeaderMap) -> Option<Duration> {
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let buc = headers
        .get_all("x-business-use-case-usage")
        .iter()
        .filter_map(|v| serde_json::from_slice::<Value>(v.as_bytes()).ok())
        .filter_map(|v| buc_minutes(&v))
        .max()
        .filter(|m| *m > 0)
        .map(|m| Duration::from_secs(m.saturating_mul(60)));
    retry_after.max(buc).map(|d| d.min(MAX_HINT))
}

/// `{"<business id>": [{"type", "call_count", ..., "estimated_time_to_regain_access": m}]}`:
/// the largest `m` over every id and entry.
fn buc_minutes(usage: &Value) -> Option<u64> {
    usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access"))
        .filter_map(|m| integer(m).and_then(|m| u64::try_from(m).ok()))
        .max()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// One line, at most `max` characters, no control characters.
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.trim().chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_documented_order() {
        assert!(classify(500, None, None));
        assert!(classify(503, Some(131000), None));
        assert!(classify(429, None, None));
        assert!(classify(400, Some(4), None));
        assert!(classify(403, Some(80007), None));
        assert!(classify(400, Some(100), Some(true)));
        assert!(!classify(500, Some(190), None));
        assert!(!classify(429, Some(200), None));
        assert!(!classify(400, None, None));
        assert!(!classify(404, Some(803), None));
        assert!(classify(502, Some(803), Some(false)));
    }

    #[test]
    fn redact_scrubs_every_occurrence() {
        let err = GraphError::Network {
            message: "tok and tok and proof".into(),
        }
        .redact(&["tok", "proof", ""]);
        assert_eq!(
            err.to_string(),
            "Graph network error: [redacted] and [redacted] and [redacted]"
        );
    }

    #[test]
    fn a_secret_across_the_message_bound_is_redacted_before_the_cut() {
        let secret = "EAAGsecrettokenvalue";
        let message = format!("{}{secret} is invalid", "x".repeat(MAX_MESSAGE_CHARS - 8));
        let body = serde_json::json!({"error": {"message": message, "code": 190}}).to_string();
        let err = parse_error_redacted(400, &HeaderMap::new(), body.as_bytes(), &[secret]);
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&secret[..8]), "{text}");
        // Redacting only after the cut is what leaked: the prefix survives it.
        let late = parse_error(400, &HeaderMap::new(), body.as_bytes()).redact(&[secret]);
        assert!(format!("{late}").contains(&secret[..8]));
    }

    #[test]
    fn clean_bounds_and_flattens() {
        assert_eq!(clean(" a\nb ", 10), "a b");
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
