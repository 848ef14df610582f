//! The ingress against a real RabbitMQ: one test binary, one module per concern.

/// Unauthenticated bounds (connections, unverified bytes) and the metrics exported at start.
mod bounds;
/// The broker refusing, never confirming, going away and coming back.
mod broker_faults;
/// Signed deliveries: signatures, bounds, envelopes, what lands on the broker.
mod delivery;
/// The published message format, byte for byte, from the golden vectors.
mod golden;
mod helpers;
/// The route table of docs/REFERENCE.md ("Ingress routes"): handshake, health, readiness,
/// metrics, unknown routes.
mod routes;
/// `/v1/signup-events`: off without a token, bearer, validation, what lands on the broker;
/// integration webhooks routed to the worker.
mod signup;
