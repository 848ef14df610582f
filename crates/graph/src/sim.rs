//! A local Graph API simulator: the onboarding and tenant check calls answered the way Graph
//! answers them, with failure modes and token and subscription states an operator can switch
//! at run time, for `wa-onboard graph-sim`, demos and tests without internet.
//!
//! Routes:
//!
//! | request | answer |
//! |---|---|
//! | `POST /{version}/{business_id}/system_user_access_tokens` | `{"access_token": "sim-<business_id>-<mac>"}` (a new token once its current one was switched to `expiring`) |
//! | `GET /{version}/debug_token?input_token=T` | `{"data": {"app_id", "is_valid", "expires_at", ...}}`: `expires_at` 0 for a first token, in one hour when switched to `expiring`, in 60 days for a re-issued one; `is_valid: false` with `error` 190/460 when switched to `invalid` |
//! | `POST /{version}/{waba_id}/subscribed_apps` | `{"success": true}`, and the app is subscribed again (`403`, code 200, when switched to `refuse`) |
//! | `GET /{version}/{waba_id}/subscribed_apps` | `{"data": [{"whatsapp_business_api_data": {"id": <app id>, "name"}}]}`, empty when switched to unsubscribed |
//! | `GET /{version}/{waba_id}/phone_numbers` | `{"data": [{"id", "display_phone_number", "verified_name"}, …]}`: two numbers, the same for a WABA on every call ([`phone_number_ids`]) |
//! | `GET /_sim/calls[?route=R]` | counts per endpoint and outcome, the current mode, and the Graph calls received (`R`: only those on route `R`) |
//! | `GET /_sim/mode` · `POST /_sim/mode` `{"fail_transient": N, "fail_permanent": bool}` | the mode (fields left out stay as they are) |
//! | `POST /_sim/tokens` `{"business_id", "state": "valid" \| "expiring" \| "expiring_stuck" \| "invalid"}` | `204`: the business's current token switched (`expiring_stuck`: expiring, and every fetch returns that same token) |
//! | `POST /_sim/subscriptions` `{"waba_id", "subscribed": bool, "refuse"?: bool}` | `204`: our app removed from (or back on) the WABA; `refuse`: subscribing again fails |
//! | anything else | `404` with a Graph error envelope |
//!
//! Parameters are read from the query string and from an `application/x-www-form-urlencoded`
//! body, as Graph does; the access token also from an `Authorization: Bearer` header. The
//! business token is the same on every fetch for a business (as with `fetch_only=true`)
//! until it is switched to `expiring`, and is an HMAC of the business id under the app secret,
//! so a restarted simulator with the same secret recognises the tokens it handed out before
//! (the switches are not kept across restarts: see [`tenants`](self::tenants)).
//!
//! Checks, in order, on both Graph routes: `fail_permanent` (400, code 190), `fail_transient`
//! (the next N calls: 500, code 2, `is_transient`), then `access_token` present (400, 104),
//! `appsecret_proof` when given or in strict mode (wrong: 400, code 100, as Meta), and in
//! strict mode (`system_user_token` set) the token itself (400, 190): the system user token for
//! `system_user_access_tokens`, the app access token `{app_id}|{app_secret}` for
//! `debug_token`, a token this simulator issued for `subscribed_apps` and `phone_numbers`.
//! A token switched to `invalid` answers 400, code 190, subcode 460 there. The token call also
//! requires `fetch_only=true` and a `system_user_id` (400, 100).
//!
//! Every Graph call (not the `/_sim` routes) is also kept in arrival order, as `received` in
//! `GET /_sim/calls`: its sequence number, arrival time, method, route, the id in its path
//! (`business_id` or `waba_id`), status and outcome. Never a token, proof or secret: only what
//! the path and the answer say. At most [`RECEIVED_CAP`] are kept (the oldest go first);
//! `received_dropped` counts those no longer kept. The record itself lives in
//! [`received`](self::received) and knows nothing of HTTP.

use std::{convert::Infallible, future::Future, io, sync::Arc, sync::Mutex, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;

pub use self::received::RECEIVED_CAP;
use self::received::{Call, Outcome, PathId, Received};

mod answers;
mod control;
mod graph;
mod received;
mod tenants;

pub use self::answers::phone_number_ids;
use self::{
    answers::{json_reply, parse_params},
    tenants::{SubscriptionSwitch, Tenants, TokenSwitch},
};

/// Largest request body the simulator reads.
const MAX_BODY: usize = 64 * 1024;
/// The app id the simulator answers for when none is configured.
pub const DEFAULT_APP_ID: &str = "100000000000001";

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// App secret: key of every `appsecret_proof` and of the tokens the simulator issues.
    pub app_secret: SecretString,
    /// When set (strict mode), the access tokens themselves are checked: the system user token
    /// for token fetches, an issued business token for `subscribed_apps`.
    pub system_user_token: Option<SecretString>,
    /// Our app (`WA_APP_ID`): what `debug_token` and `GET subscribed_apps` name; its access
    /// token `{app_id}|{app_secret}` is what `debug_token` accepts in strict mode.
    pub app_id: String,
    /// The next N Graph calls answer 500, code 2, `is_transient: true`.
    pub fail_transient: u32,
    /// Every Graph call answers 400, code 190 (token invalid / app removed) while set.
    pub fail_permanent: bool,
}

impl SimConfig {
    /// A lenient simulator with `app_secret` that never fails on purpose.
    pub fn new(app_secret: SecretString) -> Self {
        Self {
            app_secret,
            system_user_token: None,
            app_id: DEFAULT_APP_ID.to_owned(),
            fail_transient: 0,
            fail_permanent: false,
        }
    }
}

/// Serves the simulator on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
///
/// # Errors
///
/// None today: failed accepts and connections are logged and the server goes on. The
/// `io::Result` leaves room for startup failures.
pub async fn serve(
    listener: TcpListener,
    cfg: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = Arc::new(State::new(cfg));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let state = Arc::clone(&state);
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(state.handle(req).await) }
                    });
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(err) = conn.await {
                            tracing::debug!(error = %err, "graph-sim connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!(error = %err, "graph-sim accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The failure mode, as `/_sim/mode` shows and changes it.
#[derive(Debug, Clone, Copy, Serialize)]
struct Mode {
    fail_transient: u32,
    fail_permanent: bool,
}

/// A `POST /_sim/mode` body: fields left out keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeUpdate {
    fail_transient: Option<u32>,
    fail_permanent: Option<bool>,
}

/// Requests received per Graph endpoint, and how they were answered.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Calls {
    system_user_access_tokens: u64,
    debug_token: u64,
    /// `POST`: subscribing.
    subscribed_apps: u64,
    /// `GET`: listing.
    subscribed_apps_list: u64,
    phone_numbers: u64,
    not_found: u64,
    ok: u64,
    failed_transient: u64,
    failed_permanent: u64,
    rejected: u64,
}

struct State {
    app_secret: SecretString,
    system_user_token: Option<SecretString>,
    app_id: String,
    live: Mutex<Live>,
}

struct Live {
    mode: Mode,
    calls: Calls,
    received: Received,
    trace_seq: u64,
    tenants: Tenants,
}

#[derive(Clone, Copy)]
enum Endpoint {
    Token,
    DebugToken,
    Subscribe,
    SubscribedApps,
    PhoneNumbers,
}

impl Endpoint {
    /// The route segment, as `received` names it.
    fn route(self) -> &'static str {
        match self {
            Self::Token => "system_user_access_tokens",
            Self::DebugToken => "debug_token",
            Self::Subscribe | Self::SubscribedApps => "subscribed_apps",
            Self::PhoneNumbers => "phone_numbers",
        }
    }

    /// What the id in the path is.
    fn path_id(self, id: &str) -> Option<PathId<'_>> {
        match self {
            Self::Token => Some(PathId::Business(id)),
            Self::DebugToken => None,
            Self::Subscribe | Self::SubscribedApps | Self::PhoneNumbers => Some(PathId::Waba(id)),
        }
    }
}

type Reply = Response<Full<Bytes>>;

impl State {
    fn new(cfg: SimConfig) -> Self {
        Self {
            app_secret: cfg.app_secret,
            system_user_token: cfg.system_user_token,
            app_id: cfg.app_id,
            live: Mutex::new(Live {
                mode: Mode {
                    fail_transient: cfg.fail_transient,
                    fail_permanent: cfg.fail_permanent,
                },
                calls: Calls::default(),
                received: Received::new(RECEIVED_CAP),
                trace_seq: 0,
                tenants: Tenants::default(),
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        // A panic while holding the lock cannot leave counters half-updated in a harmful way.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let arrived = std::time::SystemTime::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return self.error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    100,
                    None,
                    "Request body too large",
                    false,
                );
            }
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let reply = match (&method, segments.as_slice()) {
            (&Method::GET, ["_sim", "calls"]) => {
                let params = parse_params(query.as_bytes());
                let route = params
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "route")
                    .map(|(_, v)| v.as_str());
                let live = self.live();
                json_reply(
                    StatusCode::OK,
                    &json!({
                        "calls": live.calls,
                        "mode": live.mode,
                        "received": live.received.on_route(route),
                        "received_dropped": live.received.dropped(),
                    }),
                )
            }
            (&Method::GET, ["_sim", "mode"]) => json_reply(StatusCode::OK, &self.live().mode),
            (&Method::POST, ["_sim", "mode"]) => self.set_mode(&body),
            (&Method::POST, ["_sim", "tokens"]) => {
                self.switch(&body, |t, s: TokenSwitch| t.switch_token(s, now()))
            }
            (&Method::POST, ["_sim", "subscriptions"]) => {
                self.switch(&body, |t, s: SubscriptionSwitch| t.switch_subscription(s))
            }
            (&Method::POST | &Method::GET, [version, rest @ ..])
                if version.starts_with('v') && matches!(rest.len(), 1 | 2) =>
            {
                let (id, endpoint) = match (&method, rest) {
                    (&Method::GET, ["debug_token"]) => ("", Some(Endpoint::DebugToken)),
                    (&Method::POST, [id, "system_user_access_tokens"]) => {
                        (*id, Some(Endpoint::Token))
                    }
                    (&Method::POST, [id, "subscribed_apps"]) => (*id, Some(Endpoint::Subscribe)),
                    (&Method::GET, [id, "subscribed_apps"]) => {
                        (*id, Some(Endpoint::SubscribedApps))
                    }
                    (&Method::GET, [id, "phone_numbers"]) => (*id, Some(Endpoint::PhoneNumbers)),
                    _ => ("", None),
                };
                let mut params = parse_params(query.as_bytes());
                if is_form {
                    params.extend(parse_params(&body));
                }
                if let Some(token) = &bearer {
                    params.push(("access_token".to_owned(), token.clone()));
                }
                let (call, (outcome, reply)) = match endpoint {
                    Some(endpoint) => (
                        Call::new(endpoint.route(), endpoint.path_id(id)),
                        self.graph(endpoint, id, &params),
                    ),
                    None => (Call::unknown(), self.not_found(&method, &path)),
                };
                self.received(call.answered(arrived, &method, reply.status(), outcome));
                reply
            }
            // The admin routes are not Graph calls: not kept.
            _ if segments.first() == Some(&"_sim") => self.not_found(&method, &path).1,
            _ => {
                let (outcome, reply) = self.not_found(&method, &path);
                self.received(Call::unknown().answered(arrived, &method, reply.status(), outcome));
                reply
            }
        };
        // Path and status only: the query string holds tokens.
        tracing::info!(%method, path, status = reply.status().as_u16(), "graph-sim request");
        reply
    }

    fn not_found(&self, method: &Method, path: &str) -> (Outcome, Reply) {
        self.live().calls.not_found += 1;
        let message = format!(
            "Unsupported {} request. Object with path '{path}' does not exist (graph-sim)",
            method.as_str().to_ascii_lowercase()
        );
        let reply = self.error(StatusCode::NOT_FOUND, 100, Some(33), &message, false);
        (Outcome::NotFound, reply)
    }

    fn received(&self, call: Call) {
        self.live().received.push(call);
    }
}

/// Unix seconds now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
