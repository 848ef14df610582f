//! The handler of `wa.signup_events`: Embedded Signup session events
//! ([`SessionMessage`], planned by `crate::plan::session`, applied by
//! `crate::effects::session`).

use wa_ids::DedupeKey;

use crate::{
    consumer::{Handler, Message},
    effects::session::Sessions,
    outcome::{Applied, Failure},
    plan::session::{SessionMessage, plan},
};

impl Message for SessionMessage {
    fn id(&self) -> &DedupeKey {
        &self.id
    }

    fn event(&self) -> Option<&str> {
        SessionMessage::event(self)
    }

    fn routing_key(&self) -> String {
        SessionMessage::routing_key(self)
    }
}

/// Consumes `wa.signup_events`.
pub struct SignupHandler {
    /// Effects of session events.
    pub sessions: Sessions,
}

impl Handler for SignupHandler {
    type Message = SessionMessage;
    const SPAN_NAME: &'static str = "signup_events process";

    fn parse(&self, body: &[u8], _message_id: Option<&str>) -> Result<SessionMessage, String> {
        SessionMessage::parse(body).map_err(|e| e.to_string())
    }

    async fn apply(&self, message: &SessionMessage) -> Result<Applied, Failure> {
        let plan = plan(message).map_err(|rejected| Failure::dead_letter(rejected.0))?;
        self.sessions.apply(&plan).await
    }
}
