//! The simulator's control routes: `POST /_sim/mode` (the failure mode) and the token and
//! subscription switches (`POST /_sim/tokens`, `POST /_sim/subscriptions`). Not Graph calls:
//! never recorded in `received`.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::{ModeUpdate, Reply, State, json_reply, tenants::Tenants};

impl State {
    pub(super) fn set_mode(&self, body: &[u8]) -> Reply {
        let update: ModeUpdate = match serde_json::from_slice(body) {
            Ok(update) => update,
            Err(err) => {
                let message = format!("Invalid mode: {err}");
                return self.error(StatusCode::BAD_REQUEST, 100, None, &message, false);
            }
        };
        let mut live = self.live();
        if let Some(n) = update.fail_transient {
            live.mode.fail_transient = n;
        }
        if let Some(b) = update.fail_permanent {
            live.mode.fail_permanent = b;
        }
        tracing::info!(mode = ?live.mode, "graph-sim mode changed");
        json_reply(StatusCode::OK, &live.mode)
    }

    /// A `/_sim/tokens` or `/_sim/subscriptions` switch: `204`, or `400` for a bad body or
    /// full switch sets.
    pub(super) fn switch<S: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
        apply: impl FnOnce(&mut Tenants, S) -> bool,
    ) -> Reply {
        let switch: S = match serde_json::from_slice(body) {
            Ok(switch) => switch,
            Err(err) => {
                let message = format!("Invalid switch: {err}");
                return self.error(StatusCode::BAD_REQUEST, 100, None, &message, false);
            }
        };
        if !apply(&mut self.live().tenants, switch) {
            let message = "Too many switches";
            return self.error(StatusCode::BAD_REQUEST, 100, None, message, false);
        }
        tracing::info!("graph-sim switch applied");
        let mut reply = Response::new(Full::new(Bytes::new()));
        *reply.status_mut() = StatusCode::NO_CONTENT;
        reply
    }
}
