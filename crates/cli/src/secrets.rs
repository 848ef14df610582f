//! Secrets from a flag, an environment variable or a `<VAR>_FILE`, never echoed back.

use std::path::Path;

use anyhow::{Context, bail};
use secrecy::SecretString;

/// The secret given directly, else read from `file` (trailing newline trimmed).
///
/// # Errors
///
/// When neither is given (naming `var`), or the file cannot be read.
pub fn required(value: Option<&str>, file: Option<&Path>, var: &str) -> anyhow::Result<String> {
    match (value, file) {
        (Some(v), _) if !v.is_empty() => Ok(v.to_owned()),
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {var}_FILE ({})", path.display()))?;
            let text = text.trim_end_matches(['\r', '\n']).to_owned();
            if text.is_empty() {
                bail!("{var}_FILE ({}) is empty", path.display());
            }
            Ok(text)
        }
        _ => bail!("{var} (or {var}_FILE) is required"),
    }
}

/// As [`required`], but `default` when neither is given: a setting with a default that may
/// hold a password (`AMQP_URL`, `REDIS_URL`).
///
/// # Errors
///
/// When the file cannot be read or is empty.
pub fn or_default(
    value: Option<&str>,
    file: Option<&Path>,
    var: &str,
    default: &str,
) -> anyhow::Result<String> {
    match (value, file) {
        (Some(v), _) if !v.is_empty() => Ok(v.to_owned()),
        (_, Some(_)) => required(value, file, var),
        _ => Ok(default.to_owned()),
    }
}

/// A comma-separated list of secrets (app secret rotation), in order.
///
/// # Errors
///
/// As [`required`], and when the list holds no secret.
pub fn list(
    value: Option<&str>,
    file: Option<&Path>,
    var: &str,
) -> anyhow::Result<Vec<SecretString>> {
    let secrets: Vec<SecretString> = required(value, file, var)?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect();
    if secrets.is_empty() {
        bail!("{var} holds no secret");
    }
    Ok(secrets)
}
