//! Tenant events: one persistent message per tenant state change, on the topic exchange
//! `wa.tenant_events` (docs/REFERENCE.md, "Tenant events"), for the rest of the partner's
//! platform. The worker declares the exchange with the rest of its topology; consumers bind
//! their own queues and dedupe on `message_id`.
//!
//! Owns the event's JSON ([`TenantEvent`]), its stable id, and the publisher
//! ([`TenantEvents`]). An effect publishes the events of a change *before* it reports the
//! change applied, so the delivery is acknowledged only once the broker confirmed them:
//!
//! ```ignore
//! let record = store.get(&waba_id).await?.ok_or(...)?;
//! events
//!     .publish(TenantEvent::new(EventKind::TokenReady, &change_id, occurred_at, &record))
//!     .await?; // a failed or refused publish is `Failure::Retry`: the change is retried
//! ```
//!
//! - **Stable id**: [`TenantEvent::new`] derives `id` (and `message_id`) from what caused the
//!   event (a change's dedupe key, a check's id), the event type and the WABA, never from a
//!   clock or a random number. Processing the same change again re-emits the same id, so a
//!   redelivery is at-least-once and consumers drop the duplicate.
//! - **Never a token**: the body carries the [`TenantRecord`], which holds the token's status
//!   and times only; no header carries anything else than the id and the type.
//!
//! Never reads Redis or Graph, never decides *whether* a change deserves an event (the
//! effects do); it only builds and publishes what it is given.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wa_broker::{Broker, Outgoing};
use wa_ids::WabaId;
use wa_store::{Status, TenantRecord, TokenStatus};

use crate::{metrics::Metrics, outcome::Failure};

/// The `type` of a tenant event, also its routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// `tenant.installed`: an install (`PARTNER_APP_INSTALLED`) was applied.
    #[serde(rename = "tenant.installed")]
    Installed,
    /// `tenant.token_ready`: the business token is stored (status `active`).
    #[serde(rename = "tenant.token_ready")]
    TokenReady,
    /// `tenant.token_failed`: fetching the token failed permanently (status `failed`).
    #[serde(rename = "tenant.token_failed")]
    TokenFailed,
    /// `tenant.token_invalid`: a tenant check found the token invalid.
    #[serde(rename = "tenant.token_invalid")]
    TokenInvalid,
    /// `tenant.token_refreshed`: a tenant check fetched a new token.
    #[serde(rename = "tenant.token_refreshed")]
    TokenRefreshed,
    /// `tenant.uninstalled`: an uninstall was applied; the token is destroyed.
    #[serde(rename = "tenant.uninstalled")]
    Uninstalled,
    /// `tenant.account_changed`: any other `account_update` event, named in `event`.
    #[serde(rename = "tenant.account_changed")]
    AccountChanged,
}

impl EventKind {
    /// Every type, in documentation order.
    pub const ALL: [Self; 7] = [
        Self::Installed,
        Self::TokenReady,
        Self::TokenFailed,
        Self::TokenInvalid,
        Self::TokenRefreshed,
        Self::Uninstalled,
        Self::AccountChanged,
    ];

    /// The wire name, e.g. `tenant.installed`: the body's `type` and the routing key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "tenant.installed",
            Self::TokenReady => "tenant.token_ready",
            Self::TokenFailed => "tenant.token_failed",
            Self::TokenInvalid => "tenant.token_invalid",
            Self::TokenRefreshed => "tenant.token_refreshed",
            Self::Uninstalled => "tenant.uninstalled",
            Self::AccountChanged => "tenant.account_changed",
        }
    }

    /// Whether `tenant` is a record an event of this type can carry: what docs/REFERENCE.md
    /// promises of it per type (`tenant.installed`: `status` `installed`;
    /// `tenant.token_ready` and `tenant.token_refreshed`: `token.status` `active`;
    /// `tenant.token_failed`: `failed`; `tenant.uninstalled`: `status` `uninstalled`). A
    /// record that no longer is one was moved on by a newer change, which publishes its own.
    pub fn describes(self, tenant: &TenantRecord) -> bool {
        match self {
            Self::Installed => tenant.status == Status::Installed,
            Self::TokenReady | Self::TokenRefreshed => {
                tenant.token.status == Some(TokenStatus::Active)
            }
            Self::TokenFailed => tenant.token.status == Some(TokenStatus::Failed),
            Self::Uninstalled => tenant.status == Status::Uninstalled,
            Self::TokenInvalid | Self::AccountChanged => true,
        }
    }
}

/// One tenant event: the JSON body of docs/REFERENCE.md, "Tenant events".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantEvent {
    /// Stable id (lowercase hex SHA-256), also the AMQP `message_id`: see [`TenantEvent::new`].
    pub id: String,
    /// What happened; also the routing key.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The tenant.
    pub waba_id: WabaId,
    /// Meta's event name, for `tenant.account_changed` (e.g. `DISABLED_UPDATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// When the cause happened, unix seconds: Meta's `entry.time` for a webhook, the check's
    /// time for a tenant check. The same on every re-emission.
    pub occurred_at: i64,
    /// When this copy was published, unix seconds (differs between re-emissions).
    pub emitted_at: i64,
    /// The tenant record after the change; it never holds a token.
    pub tenant: TenantRecord,
}

impl TenantEvent {
    /// An event of `kind` about `tenant`, caused by `cause` (a change's dedupe key, or the id
    /// of whatever else caused it) at `occurred_at`. The id is a hash of `cause`, `kind` and
    /// the WABA id: the same change processed again yields the same id, and one change that
    /// touches several WABAs (a business-level uninstall) yields one id per WABA.
    pub fn new(
        kind: EventKind,
        cause: &(impl AsRef<str> + ?Sized),
        occurred_at: i64,
        tenant: &TenantRecord,
    ) -> Self {
        Self {
            id: event_id(kind, cause.as_ref(), &tenant.waba_id),
            kind,
            waba_id: tenant.waba_id.clone(),
            event: None,
            occurred_at,
            emitted_at: crate::clock::unix_now(),
            tenant: tenant.clone(),
        }
    }

    /// Names Meta's event (for `tenant.account_changed`).
    #[must_use]
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    fn outgoing(&self, exchange: &str) -> Result<Outgoing, serde_json::Error> {
        let body = serde_json::to_vec(self)?;
        let timestamp = u64::try_from(self.emitted_at).unwrap_or(0);
        Ok(Outgoing::persistent_json(
            exchange,
            self.kind.as_str(),
            body,
            &self.id,
            timestamp,
        ))
    }
}

/// Lowercase hex SHA-256 of the event's identity: cause, type and WABA, separated by a byte
/// none of them can hold.
fn event_id(kind: EventKind, cause: &str, waba_id: &WabaId) -> String {
    let mut hash = Sha256::new();
    for part in [cause, kind.as_str(), waba_id.as_str()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// Publishes tenant events to `wa.tenant_events` and waits for the broker's confirms.
/// Cheap to clone.
#[derive(Clone)]
pub struct TenantEvents {
    broker: Broker,
    exchange: String,
    metrics: Arc<Metrics>,
}

impl TenantEvents {
    /// Publishes on `broker`'s `wa.tenant_events`, counting each type in `metrics` (every
    /// type is exported at 0 from here on).
    pub fn new(broker: Broker, metrics: Arc<Metrics>) -> Self {
        for kind in EventKind::ALL {
            metrics.tenant_event_type(kind.as_str());
        }
        let exchange = broker.topology().tenant_events_exchange();
        Self {
            broker,
            exchange,
            metrics,
        }
    }

    /// Publishes `event` (persistent, `message_id` = its id, routing key = its type) and
    /// waits for the broker's confirm. With no queue bound, the broker drops it: that is
    /// still published.
    ///
    /// # Errors
    ///
    /// [`Failure::Retry`] if the broker did not confirm it (not connected, nacked, blocked,
    /// the exchange missing, no confirm in time): the change that caused it must not be
    /// acknowledged, and its retry publishes it again under the same id.
    pub async fn publish(&self, event: TenantEvent) -> Result<(), Failure> {
        self.publish_all(std::slice::from_ref(&event)).await
    }

    /// As [`TenantEvents::publish`], for several events at once (one change touching several
    /// tenants): all confirmed, or a retry for all.
    ///
    /// # Errors
    ///
    /// As [`TenantEvents::publish`].
    pub async fn publish_all(&self, events: &[TenantEvent]) -> Result<(), Failure> {
        if events.is_empty() {
            return Ok(());
        }
        let messages = events
            .iter()
            .map(|e| e.outgoing(&self.exchange))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::dead_letter(format!("tenant event not encodable: {e}")))?;
        if let Err(e) = self.broker.publish_all_unrouted_ok(&messages).await {
            tracing::warn!(error = %e, events = events.len(), "tenant events not confirmed");
            return Err(Failure::Retry {
                error: format!("tenant event not published: {e}"),
                after: None,
            });
        }
        for event in events {
            tracing::info!(waba_id = %event.waba_id, r#type = event.kind.as_str(),
                id = %event.id, "tenant event published");
            self.metrics.tenant_event_published(event.kind.as_str());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(waba: &str) -> TenantRecord {
        serde_json::from_value(serde_json::json!({
            "waba_id": waba, "owner_business_id": null, "status": "installed",
            "partner_app_id": null, "solution_id": null, "solution_partner_business_ids": [],
            "phone_number_ids": [], "phone_numbers_verified": false, "installed_at": 10,
            "uninstalled_at": null, "last_event_time": 10,
            "token": {"status": "active", "fetched_at": 11, "error": null},
            "subscribed": true,
            "account": {"ban_state": null, "restrictions": [], "violation": null,
                "partner_removed": false, "deleted": false, "offboarded": false}
        }))
        .expect("a record")
    }

    #[test]
    fn the_id_depends_on_cause_type_and_waba_only() {
        let cause = "ab".repeat(32);
        let a = TenantEvent::new(EventKind::Installed, &cause, 10, &record("1"));
        let again = TenantEvent::new(EventKind::Installed, &cause, 99, &record("1"));
        assert_eq!(a.id, again.id, "a re-emission keeps its id");
        assert_eq!(a.id.len(), 64);
        let ids = [
            TenantEvent::new(EventKind::TokenReady, &cause, 10, &record("1")).id,
            TenantEvent::new(EventKind::Installed, &cause, 10, &record("2")).id,
            TenantEvent::new(EventKind::Installed, &"cd".repeat(32), 10, &record("1")).id,
        ];
        assert!(ids.iter().all(|id| *id != a.id));
    }

    #[test]
    fn the_body_has_the_documented_fields_and_names_the_event_only_when_given() {
        let cause = "ab".repeat(32);
        let e = TenantEvent::new(EventKind::AccountChanged, &cause, 10, &record("1"))
            .with_event("DISABLED_UPDATE");
        let body = serde_json::to_value(&e).expect("json");
        let mut keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "emitted_at",
                "event",
                "id",
                "occurred_at",
                "tenant",
                "type",
                "waba_id"
            ]
        );
        assert_eq!(body["type"], "tenant.account_changed");
        assert_eq!(body["event"], "DISABLED_UPDATE");
        let plain = TenantEvent::new(EventKind::Installed, &cause, 10, &record("1"));
        assert!(
            serde_json::to_value(&plain)
                .expect("json")
                .get("event")
                .is_none()
        );
        for kind in EventKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("json"),
                serde_json::json!(kind.as_str())
            );
        }
    }

    #[test]
    fn a_type_describes_only_a_record_in_the_state_it_announces() {
        let installed = record("1");
        let mut uninstalled = record("1");
        uninstalled.status = Status::Uninstalled;
        uninstalled.token.status = Some(TokenStatus::Revoked);
        let mut failed = record("1");
        failed.token.status = Some(TokenStatus::Failed);
        for (kind, yes, no) in [
            (EventKind::Installed, &installed, &uninstalled),
            (EventKind::TokenReady, &installed, &uninstalled),
            (EventKind::TokenRefreshed, &installed, &failed),
            (EventKind::TokenFailed, &failed, &installed),
            (EventKind::Uninstalled, &uninstalled, &installed),
        ] {
            assert!(kind.describes(yes), "{kind:?}");
            assert!(!kind.describes(no), "{kind:?}");
        }
        assert!(EventKind::AccountChanged.describes(&uninstalled));
    }
}
