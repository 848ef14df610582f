//! Readers of the settings that can be out of range (docs/REFERENCE.md, "Variables"): counts,
//! durations and lists of durations, each with the bounds within which the service can work.
//! A value outside them is refused at start with a message that names the variable, so a
//! setting that cannot work never reaches a running service.
//!
//! Each reader is a clap value parser (`value_parser = settings::count("WA_X", 1, 10)`): clap
//! prints the message with the flag and exits with status 2. Owns the checks only; never
//! knows which command uses them.

use std::{collections::HashSet, fmt::Display, str::FromStr, time::Duration};

/// Meta retries a webhook for up to seven days: a processed change must be remembered at
/// least that long, or a late retry is applied twice (docs/REFERENCE.md, `WA_DEDUPE_TTL`).
pub const META_RETRY_HORIZON: Duration = Duration::from_secs(7 * 86_400);

/// The longest `WA_UNROUTED_TTL`: 49 days, seven times Meta's retry horizon (a change nobody
/// consumed for that long helps nobody, and costs broker memory and disk).
pub const UNROUTED_TTL_MAX: Duration = Duration::from_secs(49 * 86_400);

/// A whole number from `min` to `max`, for the variable `var`.
pub fn count<T>(var: &'static str, min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |text| {
        let value: T = text
            .trim()
            .parse()
            .map_err(|_| format!("{var} must be a whole number from {min} to {max}"))?;
        if value < min || value > max {
            return Err(format!("{var} must be from {min} to {max}, not {value}"));
        }
        Ok(value)
    }
}

/// A duration (`90s`, `7d`, `250ms`) from `min` to `max`, for the variable `var`; `why` says
/// what the lower bound protects, for the message.
pub fn duration(
    var: &'static str,
    min: Duration,
    max: Duration,
    why: &'static str,
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let value = parse_duration(var, text)?;
        if value < min || value > max {
            return Err(format!(
                "{var} must be from {} to {}, not {}{why}",
                humantime::format_duration(min),
                humantime::format_duration(max),
                humantime::format_duration(value),
            ));
        }
        Ok(value)
    }
}

/// The longest single delay tier: past a week, Meta's own retries are over.
const MAX_RETRY_DELAY: Duration = META_RETRY_HORIZON;
/// The most delay tiers (each is a queue per work queue).
const MAX_RETRY_TIERS: usize = 20;

/// The delay tiers of `WA_RETRY_DELAYS`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDelays(pub Vec<Duration>);

/// `WA_RETRY_DELAYS`: 1 to 20 distinct delays, comma-separated, each longer than zero and at
/// most seven days. An empty list is refused: without a tier, a redelivery after a crash
/// would go straight to the dead-letter queue.
///
/// # Errors
///
/// What is wrong, naming `WA_RETRY_DELAYS`.
pub fn retry_delays(text: &str) -> Result<RetryDelays, String> {
    const VAR: &str = "WA_RETRY_DELAYS";
    if text.trim().is_empty() {
        return Err(format!(
            "{VAR} is empty: at least one delay tier is needed (e.g. `5s,30s,2m`), or a \
             transient failure would go straight to the dead-letter queue"
        ));
    }
    let mut delays = Vec::new();
    let mut seen = HashSet::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!(
                "{VAR}: an empty item in `{text}` (delays are separated by single commas)"
            ));
        }
        let delay = parse_duration(VAR, item)?;
        if delay.is_zero() || delay > MAX_RETRY_DELAY {
            return Err(format!(
                "{VAR}: `{item}` must be longer than zero and at most {}",
                humantime::format_duration(MAX_RETRY_DELAY)
            ));
        }
        if !seen.insert(delay) {
            return Err(format!(
                "{VAR}: `{item}` is given twice (one queue per tier)"
            ));
        }
        delays.push(delay);
    }
    if delays.len() > MAX_RETRY_TIERS {
        return Err(format!("{VAR}: at most {MAX_RETRY_TIERS} delays"));
    }
    Ok(RetryDelays(delays))
}

fn parse_duration(var: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "{var}: `{}` is not a duration like `90s` or `7d` ({e})",
            text.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outside_their_bounds_name_the_variable() {
        let prefetch = count::<u16>("WA_PREFETCH", 2, u16::MAX);
        assert_eq!(prefetch("64"), Ok(64));
        assert!(prefetch("0").unwrap_err().contains("WA_PREFETCH"));
        assert!(prefetch("1").unwrap_err().contains("WA_PREFETCH"));
        assert!(prefetch("many").unwrap_err().contains("WA_PREFETCH"));
        assert!(prefetch("70000").unwrap_err().contains("WA_PREFETCH"));
    }

    #[test]
    fn durations_outside_their_bounds_name_the_variable_and_why() {
        let ttl = duration(
            "WA_DEDUPE_TTL",
            META_RETRY_HORIZON,
            Duration::from_secs(365 * 86_400),
            " (Meta retries for 7 days)",
        );
        assert_eq!(ttl("8d"), Ok(Duration::from_secs(8 * 86_400)));
        let short = ttl("1h").unwrap_err();
        assert!(
            short.contains("WA_DEDUPE_TTL") && short.contains("Meta"),
            "{short}"
        );
        assert!(ttl("0s").unwrap_err().contains("WA_DEDUPE_TTL"));
        assert!(ttl("soon").unwrap_err().contains("WA_DEDUPE_TTL"));
    }

    #[test]
    fn retry_delays_are_a_non_empty_list_of_distinct_positive_delays() {
        assert_eq!(
            retry_delays("5s, 30s,250ms"),
            Ok(RetryDelays(vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_millis(250)
            ]))
        );
        for bad in ["", " ", "5s,,30s", "5s,", "0s", "5s,5s", "30d", "5 sheep"] {
            let err = retry_delays(bad).expect_err(bad);
            assert!(err.contains("WA_RETRY_DELAYS"), "{bad}: {err}");
        }
    }
}
