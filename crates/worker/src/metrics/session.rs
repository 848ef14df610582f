//! The metrics of Embedded Signup session events: events by kind, abandoned flows by step,
//! errors by code. Steps and codes come from the browser: only the first [`MAX_LABELS`]
//! distinct values become labels, later ones `OTHER`.

use std::{collections::HashSet, sync::Mutex};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use wa_envelope::session::{FINISH_EVENTS, SessionEvent, SessionKind};

use super::MAX_LABELS;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignupLabels {
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

/// The worker's session event metrics (part of [`Metrics`]).
pub struct SessionMetrics {
    events: Family<SignupLabels, Counter>,
    cancels: Family<StepLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    steps: BoundedLabels,
    codes: BoundedLabels,
}

impl SessionMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let events = Family::<SignupLabels, Counter>::default();
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
        let finishes = FINISH_EVENTS.iter().map(|event| ("finish", *event));
        let others = [
            ("cancel", "CANCEL"),
            ("error", "CANCEL"),
            ("other", "OTHER"),
        ];
        for (kind, event) in finishes.chain(others) {
            let _ = events.get_or_create(&SignupLabels { kind, event });
        }
        Self {
            events,
            cancels,
            errors,
            steps: BoundedLabels::new(MAX_LABELS),
            codes: BoundedLabels::new(MAX_LABELS),
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
            .get_or_create(&SignupLabels { kind, event: known })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_from_the_browser_are_bounded() {
        let labels = BoundedLabels::new(2);
        assert_eq!(labels.label("A"), "A");
        assert_eq!(labels.label("B"), "B");
        assert_eq!(labels.label("C"), "OTHER");
        assert_eq!(labels.label("A"), "A");
    }
}
