//! Embedded Signup session events: the second queue the worker consumes.
//!
//! The ingress publishes each event the partner's backend forwards to `wa.signup_events`
//! (routing key `embedded_signup.session`). A second [`Consumer`] in the same process takes
//! that queue, with the same dedupe claims, delay tiers (`wa.signup_events.retry.<delay>`) and
//! dead-letter queue as `wa.account_update`; what it does with each event is decided here:
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
//! - Metrics: `wa_worker_signup_events_total{kind, event}` and
//!   `wa_worker_signup_cancels_total{step}`, `wa_worker_signup_errors_total{code}`. Steps and
//!   codes come from the browser, so only the first [`MAX_LABELS`] distinct values become
//!   labels; later ones are counted as `OTHER`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use serde_json::json;
use tracing::info;
use wa_envelope::{
    ChangeMessage,
    session::{FIELD, FINISH_EVENTS, SessionEvent, SessionKind},
};
use wa_ids::DedupeKey;
use wa_store::{SignupCounter, SignupEvent};

use crate::{
    consumer::Consumer,
    decide::Plan,
    process::{Effects, Outcome},
};

/// How many distinct steps, and error codes, become metric labels.
pub const MAX_LABELS: usize = 32;

/// What to do with one session event.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    /// The message id (the event's dedupe key).
    pub id: DedupeKey,
    /// When the ingress received it, unix seconds.
    pub received_at: i64,
    /// The validated event.
    pub event: SessionEvent,
}

/// The plan for a message of object `embedded_signup`. The worker validates again what the
/// ingress validated: a replayed or hand-published message gets the same rules.
pub fn plan(change: &ChangeMessage) -> Plan {
    if change.field != FIELD {
        return Plan::Reject(format!(
            "embedded_signup field `{}` is not handled by this worker",
            change.field
        ));
    }
    match SessionEvent::from_value(change.value.clone()) {
        Ok(event) => Plan::Session(Box::new(SessionPlan {
            id: change.id.clone(),
            received_at: change.received_at,
            event,
        })),
        Err(e) => Plan::Reject(format!("malformed session event: {e}")),
    }
}

/// The consumer of `wa.signup_events`: `base`'s store, effects, limits and dedupe settings.
pub(crate) fn signup_consumer(base: &Consumer) -> Consumer {
    Consumer {
        broker: base.broker.clone(),
        store: base.store.clone(),
        effects: base.effects.clone(),
        metrics: base.metrics.clone(),
        partner_business_ids: base.partner_business_ids.clone(),
        dedupe_ttl: base.dedupe_ttl,
        lease: base.lease,
        prefetch: base.prefetch,
        concurrency: base.concurrency,
        queue: base.broker.topology().signup_events_queue(),
    }
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

impl Effects {
    /// Carries out a session event (see the module documentation).
    pub(crate) async fn session(&self, plan: &SessionPlan) -> Result<Outcome, Outcome> {
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
            return Ok(Outcome::Stale);
        }
        self.metrics.session.count(event);
        Ok(Outcome::Applied)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: &'static str,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

/// Admits the first `max` distinct values as labels; every later one is `OTHER`.
#[derive(Debug)]
struct BoundedLabels {
    seen: Mutex<HashSet<String>>,
    max: usize,
}

impl BoundedLabels {
    fn new(max: usize) -> Self {
        Self {
            seen: Mutex::new(HashSet::new()),
            max,
        }
    }

    fn label(&self, value: &str) -> String {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(value) || (seen.len() < self.max && seen.insert(value.to_owned())) {
            value.to_owned()
        } else {
            "OTHER".to_owned()
        }
    }
}

/// The worker's session event metrics (registered with [`crate::Metrics`]).
pub struct SessionMetrics {
    events: Family<EventLabels, Counter>,
    cancels: Family<StepLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    steps: Arc<BoundedLabels>,
    codes: Arc<BoundedLabels>,
}

impl SessionMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "wa_worker_signup_events",
            "Embedded Signup session events recorded, by kind and event",
            events.clone(),
        );
        let cancels = Family::<StepLabels, Counter>::default();
        registry.register(
            "wa_worker_signup_cancels",
            "Embedded Signup flows abandoned, by current_step",
            cancels.clone(),
        );
        let errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "wa_worker_signup_errors",
            "Embedded Signup errors reported, by error code",
            errors.clone(),
        );
        Self {
            events,
            cancels,
            errors,
            steps: Arc::new(BoundedLabels::new(MAX_LABELS)),
            codes: Arc::new(BoundedLabels::new(MAX_LABELS)),
        }
    }

    /// Counts one recorded event.
    pub fn count(&self, event: &SessionEvent) {
        let known = FINISH_EVENTS
            .iter()
            .chain(&["CANCEL"])
            .find(|e| **e == event.event)
            .copied()
            .unwrap_or("OTHER");
        let kind = match &event.kind {
            SessionKind::Finish { .. } => "finish",
            SessionKind::Cancel { current_step } => {
                let step = self.steps.label(current_step);
                self.cancels.get_or_create(&StepLabels { step }).inc();
                "cancel"
            }
            SessionKind::Error { code, .. } => {
                let code = self.codes.label(code);
                self.errors.get_or_create(&CodeLabels { code }).inc();
                "error"
            }
            SessionKind::Other => "other",
        };
        self.events
            .get_or_create(&EventLabels { kind, event: known })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn change(value: Value) -> ChangeMessage {
        ChangeMessage {
            id: "ab".repeat(32).parse().unwrap(),
            object: "embedded_signup".into(),
            entry_id: String::new(),
            entry_time: None,
            field: "session".into(),
            value,
            received_at: 7,
        }
    }

    #[test]
    fn a_session_event_is_planned_with_its_id_and_time() {
        let v = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH",
            "data": {"waba_id": "1", "phone_number_id": "2"}});
        let Plan::Session(p) = crate::decide::plan(&change(v), &HashSet::new()) else {
            panic!("not a session plan")
        };
        assert_eq!(
            (p.id.as_str(), p.received_at),
            ("ab".repeat(32).as_str(), 7)
        );
        assert!(matches!(p.event.kind, SessionKind::Finish { .. }));
    }

    #[test]
    fn a_malformed_or_misrouted_session_event_is_rejected() {
        let Plan::Reject(reason) = plan(&change(json!({"type": "X"}))) else {
            panic!("must be rejected")
        };
        assert!(reason.contains("`type`"), "{reason}");
        let mut other = change(json!({}));
        other.field = "other".into();
        assert!(matches!(plan(&other), Plan::Reject(_)));
    }

    #[test]
    fn metric_labels_from_the_browser_are_bounded() {
        let labels = BoundedLabels::new(2);
        assert_eq!(labels.label("A"), "A");
        assert_eq!(labels.label("B"), "B");
        assert_eq!(labels.label("C"), "OTHER");
        assert_eq!(labels.label("A"), "A");
    }
}
