//! The handler of `wa.account_update`: webhook changes as the ingress published them
//! ([`ChangeMessage`]). Object `application` is a business integration webhook
//! (`crate::plan::integration`); anything else is planned as an `account_update` change
//! (`crate::plan::account_update`), which rejects other fields.

use std::collections::HashSet;

use serde_json::Value;
use wa_envelope::ChangeMessage;
use wa_ids::{AppId, BusinessId, DedupeKey};

use crate::{
    consumer::{Handler, Message},
    effects::{account_update::AccountUpdates, integration::Integrations},
    outcome::{Applied, Failure},
    plan::{self, Rejected},
};

impl Message for ChangeMessage {
    fn id(&self) -> &DedupeKey {
        &self.id
    }

    /// `value.event`, or for a business integration webhook its field.
    fn event(&self) -> Option<&str> {
        if self.object == plan::integration::OBJECT {
            return Some(self.field.as_str());
        }
        self.value.get("event").and_then(Value::as_str)
    }

    fn routing_key(&self) -> String {
        ChangeMessage::routing_key(self)
    }
}

/// Consumes `wa.account_update`.
pub struct AccountUpdateHandler {
    /// `WA_PARTNER_BUSINESS_IDS`: the partner's own portfolio ids, never a tenant.
    pub partner_business_ids: HashSet<BusinessId>,
    /// `WA_APP_ID`: installs and uninstalls naming another app are not applied.
    pub app_id: AppId,
    /// Effects of `account_update` changes.
    pub account_updates: AccountUpdates,
    /// Effects of business integration webhooks.
    pub integrations: Integrations,
}

/// A message its plan rejects goes to the dead-letter queue with the plan's reason.
fn dead_letter(rejected: Rejected) -> Failure {
    Failure::dead_letter(rejected.0)
}

impl Handler for AccountUpdateHandler {
    type Message = ChangeMessage;
    const SPAN_NAME: &'static str = "account_update process";

    fn parse(&self, body: &[u8], _message_id: Option<&str>) -> Result<ChangeMessage, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }

    async fn apply(&self, change: &ChangeMessage) -> Result<Applied, Failure> {
        if change.object == plan::integration::OBJECT {
            let plan =
                plan::integration::plan(change, &self.partner_business_ids).map_err(dead_letter)?;
            return self.integrations.apply(&plan, &change.id).await;
        }
        let plan = plan::account_update::plan(change, &self.partner_business_ids, &self.app_id)
            .map_err(dead_letter)?;
        self.account_updates.apply(plan, &change.id).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(object: &str, field: &str, value: Value) -> ChangeMessage {
        ChangeMessage {
            id: "ab".repeat(32).parse().unwrap(),
            object: object.into(),
            entry_id: "1".into(),
            entry_time: Some(1),
            field: field.into(),
            value,
            received_at: 0,
        }
    }

    #[test]
    fn the_event_of_a_change_is_its_value_event_or_an_integration_field() {
        let install = change(
            "whatsapp_business_account",
            "account_update",
            json!({"event": "PARTNER_APP_INSTALLED"}),
        );
        assert_eq!(Message::event(&install), Some("PARTNER_APP_INSTALLED"));
        let integration = change(
            "application",
            "business_integration_install",
            json!({"business_manager_id": "2"}),
        );
        assert_eq!(
            Message::event(&integration),
            Some("business_integration_install")
        );
        assert_eq!(
            Message::routing_key(&integration),
            "application.business_integration_install"
        );
        assert_eq!(Message::event(&change("x", "y", json!({}))), None);
    }
}
