//! Ties on `entry.time`: an install and an uninstall of one WABA sent in the same second.
//! `entry.time` is when Meta sent the notification, so it cannot say which came last; Graph
//! can, for this WABA (`crate::effects::installed`: the business token fetch, then the
//! WABA's phone numbers read with it). The side Graph confirms is applied; any other answer
//! is retried (transient) or dead-lettered with the reason (permanent), never guessed.
//!
//! Called by `crate::effects::account_update` only; never reads a message.

use secrecy::SecretString;
use tracing::info;
use wa_store::{Install, Uninstall};

use super::{
    account_update::AccountUpdates,
    installed::{Installed, unsettled},
};
use crate::outcome::{Applied, Failure};

/// An install at the same second as the uninstall in effect. `Some` (the install applied,
/// and the token that proved it) if Graph says the app is installed on the WABA; `None`
/// (nothing changed: stale) if Graph says it is not.
pub(super) async fn settle_install(
    effects: &AccountUpdates,
    ev: &Install,
) -> Result<Option<(wa_store::Applied, SecretString)>, Failure> {
    match effects
        .installed_on(&ev.owner_business_id, &ev.waba_id)
        .await
    {
        Installed::Yes(token) => {
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says installed");
            let applied = effects.store.apply_install_at_tie(ev).await?;
            Ok(Some((applied, token)))
        }
        Installed::No => {
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says not installed; the uninstall stands");
            Ok(None)
        }
        Installed::Unknown(e) => Err(unsettled(&e, ev.event_time)),
    }
}

/// An uninstall at the same second as the install in effect: applied if Graph says the app
/// is not installed on the WABA, stale if Graph says it is.
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
    match effects.installed_on(&owner, &ev.waba_id).await {
        Installed::Yes(_) => {
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says installed; the install stands");
            Ok(Applied::Stale)
        }
        Installed::No => {
            let applied = effects.store.apply_uninstall(ev).await?;
            info!(waba_id = %ev.waba_id, event_time = ev.event_time,
                "install and uninstall in one second: Graph says not installed; uninstalled");
            Ok(if applied.stale {
                Applied::Stale
            } else {
                Applied::Changed
            })
        }
        Installed::Unknown(e) => Err(unsettled(&e, ev.event_time)),
    }
}
