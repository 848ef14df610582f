//! The internal API against a real Redis (`REDIS_URL`, default `redis://127.0.0.1:6379/0`):
//! one test binary, one module per concern. Each test runs the real server on port 0 over
//! its own Redis key prefix, removed afterwards.

/// Shared setup: the server, its callers, seeded tenants, the captured log.
mod helpers;
/// `docs/openapi.yaml` and the server's route table describe the same routes.
mod openapi;
/// Bearer, unknown routes, methods, bodies, query bounds, probes and metrics.
mod routes;
/// Schemathesis against docs/openapi.yaml (ignored; scripts/check-api.sh runs it).
mod schemathesis;
/// Tenant records, pages and filters, the signup funnel.
mod tenants;
/// Business token reads: served, refused, audit-logged, counted; never in logs or metrics.
mod token;
