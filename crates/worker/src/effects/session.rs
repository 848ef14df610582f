//! Carrying out an Embedded Signup session event (planned by `crate::plan::session`).
//!
//! - `FINISH_GRANT_ONLY_API_ACCESS`, `FINISH`, `FINISH_ONLY_WABA`: `data.phone_number_id` is
//!   merged into tenant `data.waba_id`, and every WABA the event names gets a record, created
//!   in status `pending` when Meta's webhook has not arrived yet. The data comes from the
//!   customer's browser, so it is untrusted: a session event never marks a tenant installed,
//!   never sets its owner and never fetches a token. Only the signed `PARTNER_APP_INSTALLED`
//!   does, and it still applies to a `pending` record, keeping its phone numbers.
//! - Every event, `CANCEL` (`current_step`) and error reports (`error_code` or `error_id`,
//!   `session_id`) included, is logged under its sessions (`launch_id`, Meta's `session_id`)
//!   for `signups get` and counted once in the funnel (`signups funnel`), with the retention
//!   and bounds of `wa_store::session`.
//! - Metrics: `wa_worker_signup_events_total{kind, event}`,
//!   `wa_worker_signup_cancels_total{step}` and `wa_worker_signup_errors_total{code}`, counted
//!   once per event (a redelivery already counted is [`Applied::Stale`]).
//!
//! Redis only; never the Graph API.

use std::sync::Arc;

use serde_json::json;
use tracing::info;
use wa_envelope::session::{SessionEvent, SessionKind};
use wa_store::{SignupCounter, SignupEvent, Store};

use crate::{
    metrics::Metrics,
    outcome::{Applied, Failure},
    plan::session::SessionPlan,
};

/// The effects of session events.
#[derive(Clone)]
pub struct Sessions {
    /// Tenant state and the session log.
    pub store: Store,
    /// Counts session events.
    pub metrics: Arc<Metrics>,
}

fn counter(event: &SessionEvent) -> SignupCounter {
    match &event.kind {
        SessionKind::Finish { .. } => SignupCounter::Finished {
            event: event.event.clone(),
        },
        SessionKind::Cancel { current_step } => SignupCounter::Cancelled {
            step: current_step.clone(),
        },
        SessionKind::Error { code, .. } => SignupCounter::Error { code: code.clone() },
        SessionKind::Other => SignupCounter::Other {
            event: event.event.clone(),
        },
    }
}

impl Sessions {
    /// Carries out `plan` (see the module documentation).
    ///
    /// # Errors
    ///
    /// [`Failure`] from Redis.
    pub async fn apply(&self, plan: &SessionPlan) -> Result<Applied, Failure> {
        let event = &plan.event;
        if let SessionKind::Finish {
            waba_id,
            phone_number_id,
            other_waba_ids,
            ..
        } = &event.kind
        {
            let merged = self
                .store
                .merge_signup(waba_id, phone_number_id.as_ref())
                .await?;
            for other in other_waba_ids {
                self.store.merge_signup(other, None).await?;
            }
            info!(%waba_id, status = merged.status.as_str(), phone_number_added = merged.added,
                event = %event.event, "signup finish merged into the tenant");
        }
        let recorded = self
            .store
            .record_signup_event(&SignupEvent {
                id: plan.id.clone(),
                received_at: plan.received_at,
                session_ids: event.session_ids(),
                counter: counter(event),
                entry: json!({"id": plan.id, "received_at": plan.received_at, "message": event.value}),
            })
            .await?;
        if !recorded.counted {
            return Ok(Applied::Stale);
        }
        self.metrics.session.count(event);
        Ok(Applied::Changed)
    }
}
