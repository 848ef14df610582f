//! The handler of `wa.tenant_checks`: tenant checks queued by `reconcile`
//! ([`CheckMessage`], read by `crate::plan::check`, carried out by `crate::effects::check`).

use wa_ids::DedupeKey;

use crate::{
    consumer::{Fate, Handler, Message},
    effects::check::Checks,
    metrics::CheckOutcome,
    outcome::{Applied, Failure},
    plan::check::{CheckMessage, ROUTING_KEY},
};

impl Message for CheckMessage {
    fn id(&self) -> &DedupeKey {
        &self.id
    }

    fn event(&self) -> Option<&str> {
        Some("TENANT_CHECK")
    }

    fn routing_key(&self) -> String {
        ROUTING_KEY.to_owned()
    }
}

/// Consumes `wa.tenant_checks`.
pub struct CheckHandler {
    /// Effects of tenant checks.
    pub checks: Checks,
}

impl Handler for CheckHandler {
    type Message = CheckMessage;
    const SPAN_NAME: &'static str = "tenant_checks process";

    fn parse(&self, body: &[u8], message_id: Option<&str>) -> Result<CheckMessage, String> {
        CheckMessage::parse(body, message_id).map_err(|rejected| rejected.0)
    }

    async fn apply(&self, message: &CheckMessage) -> Result<Applied, Failure> {
        self.checks.apply(message).await
    }

    /// A check that did not end in `apply` is counted by where it went: each delay tier a
    /// `retry` (or `busy`), the dead-letter queue `failed`, once.
    fn settled(&self, fate: Fate) {
        let outcome = match fate {
            Fate::Retried => CheckOutcome::Retry,
            Fate::Busy => CheckOutcome::Busy,
            Fate::DeadLettered => CheckOutcome::Failed,
            // Counted by `apply` (or a duplicate, not a check); a requeued one comes again.
            Fate::Acked | Fate::Requeued => return,
        };
        self.checks.metrics.checks.check(outcome);
    }
}
