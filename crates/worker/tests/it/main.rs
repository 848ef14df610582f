//! The worker against a real RabbitMQ and Redis, with the Graph API on wiremock.

/// The census of token health: its gauges, one replica at a time counting, every replica
/// exporting it, a crashed holder, failing walks.
mod census;
/// Tenant checks that fail: counted by where they went, dead-lettered ones `failed` once.
mod check_failures;
/// Tenant checks racing the tenant or each other: an uninstall mid-check or before it, a
/// refreshed token refused, two workers and one tenant.
mod check_races;
/// Tenant checks against graph-sim: expiry, refresh, invalid tokens, subscriptions, phones.
mod checks;
/// Installs, uninstalls (with and without `waba_info`) and account events on a Redis Cluster.
mod cluster;
/// `WA_CONCURRENCY` is one limit for the whole process, across both queues.
mod concurrency;
/// The documented JSON Schema of a tenant event, and a body checked against it.
mod event_schema;
/// Tenant events on `wa.tenant_events`: one per change, confirmed before the ack, stable ids.
mod events;
/// Tenant events when changes race, or when a fan-out is only partly confirmed.
mod events_races;
/// Transient and permanent Graph errors, delay tiers, the DLQ and its replay, crashes.
mod failures;
/// wiremock's Graph for tenant checks: a tenant with a token held, answers about that token.
mod graph_mock;
mod helpers;
/// Installs: the exact token request, exactly once, encrypted at rest, subscription.
mod install;
/// The business integration webhooks: an uninstall revokes every tenant of the business.
mod integration;
/// The metrics exported before the first message.
mod metrics;
/// What a test reads: metrics, records, dead letters, Graph requests, idle queues.
mod observe;
/// What a test sends: webhook bodies, wiremock's Graph answers.
mod payloads;
/// Another app's events, owner change, reinstall, early bare uninstall, stale outcomes, ties.
mod semantics;
/// Embedded Signup session events (pending tenants, phone numbers, the funnel).
mod signup;
/// graph-sim for the tenant checks, and tenants seeded against it.
mod sim;
/// One trace from the ingress request to the worker.
mod trace;
/// Uninstalls, ordering, and uninstalls without waba_info.
mod uninstall;
