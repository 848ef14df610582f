//! Ties on `entry.time`: an install and an uninstall of one WABA sent in the same second.
//! `entry.time` is when Meta sent the notification, so it cannot say which came last; Graph
//! can. A business token fetch that succeeds proves the app is installed; error 190 with
//! subcode 458 proves it is not. The side Graph confirms is applied; any other answer is
//! retried (transient) or dead-lettered with the reason (permanent), never guessed.
//!
//! Called by `crate::effects::account_update` only; never reads a message.

use secrecy::SecretString;
use tracing::info;
use wa_graph::GraphError;
use wa_store::{Install, Uninstall};

use super::account_update::AccountUpdates;
use crate::outcome::{Applied, Failure};

/// An install at the same second as the uninstall in effect. `Some` (the install applied,
/// and the token that proved it) if Graph says the app is installed; `None` (nothing
/// changed: stale) if Graph says it is not.
pub(super) async fn settle_install(
    effects: &AccountUpdates,
    ev: &Install,
) -> Result<Option<(wa_store::Applied, SecretString)>, Failure> {
    match effects.fetch_token(&ev.owner_business_id).await {
        Ok(token) => {
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says installed");
            let applied = effects.store.apply_install_at_tie(ev).await?;
            Ok(Some((applied, token)))
        }
        Err(e) if e.app_not_installed() => {
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says not installed; the uninstall stands");
            Ok(None)
        }
        Err(e) => Err(unsettled(&e, ev.event_time)),
    }
}

/// An uninstall at the same second as the install in effect: applied if Graph says the app
/// is not installed, stale if Graph says it is.
pub(super) async fn settle_uninstall(
    effects: &AccountUpdates,
    ev: &Uninstall,
) -> Result<Applied, Failure> {
    let owner = effects
        .store
        .get(&ev.waba_id)
        .await?
        .and_then(|t| t.owner_business_id);
    let Some(owner) = owner else {
        // An installed record always has its owner; without one there is nothing to ask.
        return Err(Failure::dead_letter(format!(
            "uninstall tied with an install of {} that names no owner",
            ev.waba_id
        )));
    };
    match effects.fetch_token(&owner).await {
        Ok(_) => {
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says installed; the install stands");
            Ok(Applied::Stale)
        }
        Err(e) if e.app_not_installed() => {
            let applied = effects.store.apply_uninstall(ev).await?;
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says not installed; uninstalled");
            Ok(if applied.stale {
                Applied::Stale
            } else {
                Applied::Changed
            })
        }
        Err(e) => Err(unsettled(&e, ev.event_time)),
    }
}

/// Graph answered neither way: retry a transient error, dead-letter any other.
fn unsettled(e: &GraphError, event_time: i64) -> Failure {
    if e.is_transient() {
        return Failure::graph(e);
    }
    Failure::dead_letter(format!(
        "install and uninstall both at entry.time {event_time}; Graph could not settle it: {}",
        e.summary()
    ))
}
