//! What the project's HTTP servers (the webhook ingress, the internal API) share, and only
//! that: the accept loop with its graceful shutdown ([`serve`]), the plain answer every
//! route builds on ([`reply`]), the span of a request ([`request_span!`]) and the per-route
//! request counter ([`Requests`]).
//!
//! It owns no route, no rule about who may call, and no bound on request input: those stay
//! with each server. It never reads Redis, never touches the broker, and never logs a
//! request's content. Everything here is generic over the server's handler, so a request
//! costs nothing more than it would in the server's own code (no boxing, no dynamic
//! dispatch, no allocation of its own).

mod metrics;
mod reply;
mod serve;
#[doc(hidden)]
pub mod span;

pub use crate::{
    metrics::{RequestLabels, Requests},
    reply::{Reply, reply},
    serve::{Serve, serve},
};
