//! Whether the app is installed on one WABA, asked of Graph: the answer that settles an
//! install and an uninstall sent in the same second (`entry.time` cannot).
//!
//! Two calls, because a business token proves the app is installed for the *business*, not
//! on this WABA (the owner may have another WABA with the app):
//!
//! 1. `POST /{owner}/system_user_access_tokens?fetch_only=true`: error 190 with subcode 458
//!    proves the app is not installed for the business.
//! 2. With the token, `GET /{waba}/phone_numbers`: an answer proves the app is installed on
//!    this WABA; a permanent error saying the token has no access to it (code 190 with any
//!    subcode, 100, 200 or 10) proves it is not.
//!
//! Any other answer is neither: a transient one is retried, a permanent one dead-lettered
//! with the reason ([`unsettled`]), never guessed.
//!
//! Also how a fetched token's expiry is learnt ([`expiry`]). Graph only; never Redis.

use secrecy::SecretString;
use wa_graph::{GraphClient, GraphError, TokenHealth};
use wa_ids::{AppId, BusinessId, WabaId};
use wa_store::TokenExpiry;

use crate::{metrics::Metrics, outcome::Failure};

/// Graph's answer for one WABA.
pub(super) enum Installed {
    /// Installed on this WABA: the business token that proved it.
    Yes(SecretString),
    /// Not installed on this WABA.
    No,
    /// Graph answered neither way.
    Unknown(GraphError),
}

/// Fetches the business token of `owner`, counted.
pub(super) async fn fetch_token(
    graph: &GraphClient,
    metrics: &Metrics,
    owner: &BusinessId,
) -> Result<SecretString, GraphError> {
    let fetched = graph.fetch_business_token(owner).await;
    metrics.token_fetch(&fetched);
    fetched
}

/// Asks `debug_token` about `token`, counted; `None` (logged) when Graph could not answer,
/// did not say when it expires, or says the token is not valid: the token is still stored,
/// its expiry unknown (`null`) until a check learns it (and flags an invalid one).
pub(super) async fn expiry(
    graph: &GraphClient,
    metrics: &Metrics,
    app_id: &AppId,
    waba_id: &WabaId,
    token: &SecretString,
) -> Option<TokenExpiry> {
    match health(graph, metrics, app_id, token).await {
        Ok(health) if !health.is_valid => {
            tracing::warn!(%waba_id, code = ?health.error_code, "fetched token not valid");
            None
        }
        Ok(health) => health.expires_at.map(|expires_at| TokenExpiry {
            expires_at,
            checked_at: crate::clock::unix_now(),
        }),
        Err(e) => {
            tracing::warn!(%waba_id, error = %e.summary(), "token expiry not learnt");
            None
        }
    }
}

/// `debug_token` for `token`, counted.
pub(super) async fn health(
    graph: &GraphClient,
    metrics: &Metrics,
    app_id: &AppId,
    token: &SecretString,
) -> Result<TokenHealth, GraphError> {
    let health = graph.debug_token(app_id, token).await;
    metrics.checks.graph_call("debug_token", &health);
    health
}

/// Asks Graph whether the app is installed on `waba_id`, owned by `owner`.
pub(super) async fn on_waba(
    graph: &GraphClient,
    metrics: &Metrics,
    owner: &BusinessId,
    waba_id: &WabaId,
) -> Installed {
    let token = match fetch_token(graph, metrics, owner).await {
        Ok(token) => token,
        Err(e) if e.app_not_installed() => return Installed::No,
        Err(e) => return Installed::Unknown(e),
    };
    match graph.phone_numbers(waba_id, &token).await {
        Ok(_) => Installed::Yes(token),
        Err(e) if no_access(&e) => Installed::No,
        Err(e) => Installed::Unknown(e),
    }
}

/// A permanent error saying the token has no access to the asset: 190 (any subcode), 100,
/// 200 or 10.
fn no_access(e: &GraphError) -> bool {
    !e.is_transient() && matches!(e.code(), Some(190 | 100 | 200 | 10))
}

/// Graph answered neither way: retry a transient error, dead-letter any other.
pub(super) fn unsettled(e: &GraphError, event_time: i64) -> Failure {
    if e.is_transient() {
        return Failure::graph(e);
    }
    Failure::dead_letter(format!(
        "install and uninstall both at entry.time {event_time}; Graph could not settle it: {}",
        e.summary()
    ))
}
