//! One integration test binary for wa-graph: the real `GraphClient` against wiremock and
//! against the simulator, both on 127.0.0.1:0.

// Shared constants, config builders, fixtures and an independent appsecret_proof.
mod helpers;
// The exact requests both calls send, and how replies are read.
mod requests;
// In-process retry: backoff, attempt counts, Retry-After and X-Business-Use-Case-Usage.
mod retry;
// Error parsing and classification, fixtures, and that no error text carries a secret.
mod errors;
// Our parsing and requests checked against Meta's own OpenAPI description.
mod openapi;
// The simulator driven by the real client, its admin routes, and secret-free logs.
mod sim;
// The tenant check calls (debug_token, GET subscribed_apps) and the simulator's switches.
mod health;
// What the simulator says it was asked: `GET /_sim/calls`'s `received`, by route.
mod phone_numbers;
mod sim_calls;
