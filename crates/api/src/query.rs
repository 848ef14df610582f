//! The query strings the API accepts, parsed whole before anything is read: `GET /v1/tenants`
//! (`status`, `attention`, `limit`, `cursor`) and `GET /v1/signups/funnel` (`since`), and the
//! opaque paging cursor.
//!
//! Owns every bound on request input besides the path: the query's length, which parameters
//! exist (an unknown or repeated one is refused), and each value's rule. Pure functions of
//! the query text (fuzzed by `fuzz/fuzz_targets/api_query.rs`); never touches Redis.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use wa_ids::WabaId;
use wa_store::{PagePosition, Status, session::FUNNEL_RETENTION};

use crate::ApiError;

/// The longest query string accepted, in bytes (before percent-decoding).
pub const MAX_QUERY_BYTES: usize = 1024;
/// The largest page (`limit`).
pub const MAX_LIMIT: usize = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The longest cursor accepted.
pub const MAX_CURSOR_LEN: usize = 128;
/// The longest `attention` value: `attention` names are short snake_case words.
const MAX_ATTENTION_LEN: usize = 64;
/// The funnel window when `since` is not given.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The cursor format's version, its first field.
const CURSOR_VERSION: &str = "1";

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::BadRequest(reason.into())
}

/// Percent-decoded `(name, value)` pairs of a query no longer than [`MAX_QUERY_BYTES`], each
/// name one of `known` and given at most once.
fn pairs(query: Option<&str>, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return Err(bad(format!(
            "the query string is longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if !known.contains(&name.as_ref()) {
            let shown: String = name.chars().take(32).collect();
            return Err(bad(format!("unknown query parameter `{shown}`")));
        }
        if seen.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!("query parameter `{name}` is given twice")));
        }
        seen.push((name.into_owned(), value.into_owned()));
    }
    Ok(seen)
}

/// Refuses any query string: for the routes that take no parameter.
///
/// # Errors
///
/// [`ApiError::BadRequest`] for a query that names any parameter or is too long.
pub fn none(query: Option<&str>) -> Result<(), ApiError> {
    pairs(query, &[]).map(drop)
}

/// The parameters of `GET /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// `status`: only tenants in this status.
    pub status: Option<Status>,
    /// `attention`: only tenants whose `attention` lists this value.
    pub attention: Option<String>,
    /// `limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub limit: usize,
    /// `cursor`: where to resume (the start when absent).
    pub from: PagePosition,
}

impl ListQuery {
    /// Parses the query string of `GET /v1/tenants`.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadRequest`], naming the parameter at fault.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut out = Self {
            status: None,
            attention: None,
            limit: DEFAULT_LIMIT,
            from: PagePosition::default(),
        };
        for (name, value) in pairs(query, &["status", "attention", "limit", "cursor"])? {
            match name.as_str() {
                "status" => {
                    out.status = Some(match value.as_str() {
                        "installed" => Status::Installed,
                        "uninstalled" => Status::Uninstalled,
                        "pending" => Status::Pending,
                        _ => return Err(bad("`status` is installed, uninstalled or pending")),
                    });
                }
                "attention" => {
                    if value.is_empty()
                        || value.len() > MAX_ATTENTION_LEN
                        || !value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    {
                        return Err(bad(format!(
                            "`attention` is 1 to {MAX_ATTENTION_LEN} of [a-z_] (e.g. token_invalid)"
                        )));
                    }
                    out.attention = Some(value);
                }
                "limit" => {
                    out.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad(format!("`limit` is 1 to {MAX_LIMIT}")))?;
                }
                _ => out.from = decode_cursor(&value)?,
            }
        }
        Ok(out)
    }
}

/// The `since` of `GET /v1/signups/funnel`: a duration (`24h`, `7d`), longer than zero and
/// at most the funnel's retention (90 days); [`DEFAULT_SINCE`] when absent.
///
/// # Errors
///
/// [`ApiError::BadRequest`] for another parameter, or a `since` that breaks the rule.
pub fn funnel_since(query: Option<&str>) -> Result<Duration, ApiError> {
    let Some((_, value)) = pairs(query, &["since"])?.pop() else {
        return Ok(DEFAULT_SINCE);
    };
    let rule = || bad("`since` is a duration such as 24h or 7d, at most 90d");
    if value.len() > 32 {
        return Err(rule());
    }
    let since = humantime::parse_duration(&value).map_err(|_| rule())?;
    if since.is_zero() || since > FUNNEL_RETENTION {
        return Err(rule());
    }
    Ok(since)
}

/// The opaque cursor of a position: URL-safe base64 of `1.<node>.<scan>.<after>`. Clients
/// must not build or read it: its content may change with the version field.
#[must_use]
pub fn encode_cursor(at: &PagePosition) -> String {
    let after = at.after.as_ref().map_or("", WabaId::as_str);
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}.{}.{}.{after}", at.node, at.scan))
}

/// A cursor made by [`encode_cursor`].
///
/// # Errors
///
/// [`ApiError::BadRequest`] for anything else.
pub fn decode_cursor(cursor: &str) -> Result<PagePosition, ApiError> {
    let invalid = || bad("`cursor` is not one this API gave out");
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&raw).map_err(|_| invalid())?;
    let mut fields = text.split('.');
    let (Some(CURSOR_VERSION), Some(node), Some(scan), Some(after), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(invalid());
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(node) || !digits(scan) {
        return Err(invalid());
    }
    Ok(PagePosition {
        node: node.parse().map_err(|_| invalid())?,
        scan: scan.parse().map_err(|_| invalid())?,
        after: match after {
            "" => None,
            id => Some(WabaId::parse(id).map_err(|_| invalid())?),
        },
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn list_defaults_and_values() {
        let q = ListQuery::parse(None).unwrap();
        assert_eq!(
            (q.status, q.attention, q.limit),
            (None, None, DEFAULT_LIMIT)
        );
        assert_eq!(q.from, PagePosition::default());
        let q = ListQuery::parse(Some("status=installed&attention=token_invalid&limit=5")).unwrap();
        assert_eq!(q.status, Some(Status::Installed));
        assert_eq!(q.attention.as_deref(), Some("token_invalid"));
        assert_eq!(q.limit, 5);
        assert_eq!(ListQuery::parse(Some("")).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn list_refuses_what_breaks_a_rule() {
        for (query, says) in [
            ("status=active", "status"),
            ("status=", "status"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("attention=Token", "attention"),
            ("attention=", "attention"),
            ("cursor=", "cursor"),
            ("cursor=%00", "cursor"),
            ("limit=1&limit=2", "twice"),
            ("page=2", "unknown query parameter `page`"),
        ] {
            let err = ListQuery::parse(Some(query)).unwrap_err().to_string();
            assert!(err.contains(says), "{query}: {err}");
        }
        let long = format!("status=installed&{}", "x".repeat(MAX_QUERY_BYTES));
        let err = ListQuery::parse(Some(&long)).unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
    }

    #[test]
    fn funnel_since_is_bounded() {
        assert_eq!(funnel_since(None).unwrap(), DEFAULT_SINCE);
        assert_eq!(
            funnel_since(Some("since=24h")).unwrap(),
            Duration::from_secs(86_400)
        );
        assert!(funnel_since(Some("since=90d")).is_ok());
        for bad in ["since=91d", "since=0s", "since=soon", "since=", "until=1h"] {
            assert!(funnel_since(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_without_parameters_refuse_any() {
        assert!(none(None).is_ok());
        assert!(none(Some("")).is_ok());
        assert!(none(Some("x=1")).is_err());
    }

    #[test]
    fn cursors_refuse_what_was_not_given_out() {
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("2.0.5."),
            &URL_SAFE_NO_PAD.encode("1.0.5"),
            &URL_SAFE_NO_PAD.encode("1.0.5.1.2"),
            &URL_SAFE_NO_PAD.encode("1.x.5."),
            &URL_SAFE_NO_PAD.encode("1.0.+5."),
            &URL_SAFE_NO_PAD.encode("1.70000.5."),
            &URL_SAFE_NO_PAD.encode("1.0.5.w1"),
            &"A".repeat(MAX_CURSOR_LEN + 1),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(node in any::<u16>(), scan in any::<u64>(), after in proptest::option::of("[0-9]{1,32}")) {
            let at = PagePosition { node, scan, after: after.map(|a| WabaId::parse(&a).unwrap()) };
            let cursor = encode_cursor(&at);
            prop_assert!(cursor.len() <= MAX_CURSOR_LEN);
            prop_assert_eq!(decode_cursor(&cursor).unwrap(), at);
        }

        #[test]
        fn any_query_parses_or_is_refused(query in ".{0,300}") {
            let _ = ListQuery::parse(Some(&query));
            let _ = funnel_since(Some(&query));
        }
    }
}
