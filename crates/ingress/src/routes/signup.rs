//! `POST /v1/signup-events`: Embedded Signup session events, forwarded by the partner's own
//! backend (the browser's `postMessage` carries no signature, so the browser never calls this
//! route itself: the partner's backend authenticates its own user, then forwards).
//!
//! bearer → size → bounded read → validate → publish with confirms → `202`.
//!
//! - Off (`404`, as an unknown path) unless `WA_SIGNUP_API_TOKEN` is set.
//! - `Authorization: Bearer <WA_SIGNUP_API_TOKEN>`, checked before the body is read. Both
//!   sides are hashed with SHA-256 and the digests compared in constant time, so neither the
//!   token's bytes nor its length leak through timing. Anything else is `401` with
//!   `WWW-Authenticate: Bearer`.
//! - At most [`MAX_BODY_BYTES`] (64 KiB; `413` above), read within the ingress's read timeout.
//! - Validated by `wa_envelope::session` (`400` with the reason; unknown event names are
//!   accepted and kept).
//! - Published to the webhooks exchange with routing key `embedded_signup.session`,
//!   persistent, `message_id` = SHA-256 of the body's canonical JSON, so a re-sent event is
//!   applied once by the worker. `202` with `{"id": "<message id>"}` once the broker has
//!   confirmed; `503` with `Retry-After` otherwise (the partner's backend retries).

use std::time::Instant;

use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use secrecy::SecretString;
use tracing::{Instrument, info, warn};
use wa_broker::Outgoing;
use wa_envelope::session::{MAX_BODY_BYTES, SessionEvent};
use wa_telemetry::{TRACEPARENT, traceparent};

use super::{App, Reply, not_published, reply, text, unix_now};

/// The route's path.
pub const SIGNUP_PATH: &str = "/v1/signup-events";

/// Whether `authorization` is `Bearer <token>` (scheme case-insensitive, RFC 9110 §11.1).
fn authorized(token: &SecretString, authorization: Option<&HeaderValue>) -> bool {
    let given = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
        .filter(|credentials| !credentials.is_empty());
    let Some(given) = given else {
        return false;
    };
    super::secret_eq(given.as_bytes(), token)
}

fn unauthorized() -> Reply {
    let mut response = text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"wa-onboard\""),
    );
    response
}

/// Handles `POST /v1/signup-events`.
pub(super) async fn receive(app: &App, req: Request<Incoming>) -> Reply {
    let Some(token) = &app.config.signup_api_token else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    if !authorized(token, req.headers().get(header::AUTHORIZATION)) {
        warn!("signup event refused: missing or wrong bearer token");
        return unauthorized();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    }
    let read = tokio::time::timeout(
        app.config.read_timeout,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    );
    let body = match read.await {
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "body not received in time\n"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        Ok(Err(_)) => return text(StatusCode::BAD_REQUEST, "body could not be read\n"),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let event = match SessionEvent::parse(&body) {
        Ok(event) => event,
        Err(e) => {
            warn!(error = %e, "malformed signup event");
            return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let name = event.event.clone();
    let change = event.into_change(unix_now());
    let publish_span = tracing::info_span!(
        target: super::TRACE_TARGET,
        "publish",
        otel.kind = "producer",
        otel.name = %format_args!("publish {}", app.exchange),
        messaging.system = "rabbitmq",
        messaging.operation.type = "publish",
        messaging.destination.name = %app.exchange,
        messaging.message.id = %change.id,
        wa.event = %name,
    );
    let message = Outgoing::persistent_json(
        app.exchange.as_str(),
        change.routing_key(),
        change.to_json(),
        change.id.as_str(),
        change.received_at.unsigned_abs(),
    )
    .header(TRACEPARENT, traceparent(&publish_span));
    tracing::Span::current().record("changes", 1);
    let started = Instant::now();
    match app
        .broker
        .publish_all(std::slice::from_ref(&message))
        .instrument(publish_span)
        .await
    {
        Ok(()) => {
            app.metrics
                .publish_seconds
                .observe(started.elapsed().as_secs_f64());
            app.metrics.changes_published.inc();
            info!(event = %name, id = %change.id, "signup event accepted");
            reply(
                StatusCode::ACCEPTED,
                "application/json",
                serde_json::json!({"id": change.id}).to_string(),
            )
        }
        Err(e) => {
            warn!(error = %e, "signup event not confirmed; asking the sender to retry");
            not_published(app, &e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_is_accepted() {
        let token = SecretString::from("s3cret-signup-token".to_owned());
        let check = |v: &str| authorized(&token, Some(&HeaderValue::from_str(v).unwrap()));
        assert!(check("Bearer s3cret-signup-token"));
        assert!(check("bearer s3cret-signup-token"));
        assert!(!check("Bearer s3cret-signup-toke"));
        assert!(!check("Bearer s3cret-signup-token2"));
        assert!(!check("Basic s3cret-signup-token"));
        assert!(!check("s3cret-signup-token"));
        assert!(!check("Bearer "));
        assert!(!authorized(&token, None));
    }
}
