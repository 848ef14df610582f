//! The worker against a real RabbitMQ and Redis, with the Graph API on wiremock.

/// Transient and permanent Graph errors, delay tiers, the DLQ and its replay, crashes.
mod failures;
mod helpers;
/// Installs: the exact token request, exactly once, encrypted at rest, subscription.
mod install;
/// Embedded Signup session events (pending tenants, phone numbers, the funnel) and the
/// business integration webhooks.
mod signup;
/// One trace from the ingress request to the worker.
mod trace;
/// Uninstalls, ordering, and uninstalls without waba_info.
mod uninstall;
