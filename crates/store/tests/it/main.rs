//! Integration tests of wa-store against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379/0`). Every test works under its own random key prefix and removes
//! its keys when done, even when it fails.

/// Shared setup: a store on a fresh prefix, raw access, and a dump of every key.
mod helpers;

/// Account events: per-attribute ordering, unknown events kept.
mod account;
/// Tenant checks: expiry learnt at fetch, findings tied to the install, the check lease.
mod check;
/// A check's write refused after its guard passed, when an uninstall landed in between.
mod check_gap;
/// The same store on a Redis Cluster (3 masters, 3 replicas) and on TLS: round trips, every
/// master scanned, replicas waited for, a lost write re-applied once.
mod cluster;
/// Many concurrent deliveries of one tenant's events converge on the newest.
mod concurrency;
/// Claims, completion, release and lease expiry of dedupe keys.
mod dedupe;
/// Error classification: transient vs permanent.
mod errors;
/// The census lease: one holder at a time, given back, run out, on a cluster; the census
/// published under it.
mod lease;
/// Listing by SCAN and the owner business index.
mod list;
/// Pages of tenants for the internal API: bounded, filtered, resumable.
mod page;
/// Property tests: any order of install / uninstall events ends in the newest event's state.
mod properties;
/// Connection loss and recovery through a TCP proxy that can cut Redis off.
mod reconnect;
/// `tenants rekey`: key rotation without downtime.
mod rekey;
/// Owner change, reinstall, ties, and verified phone numbers.
mod semantics;
/// Embedded Signup: phone numbers merged into tenants, session logs, the funnel, integration
/// install/uninstall times.
mod signup;
/// Install / uninstall ordering and the token lifecycle on the tenant record.
mod tenant;
/// Tokens at rest: never plaintext, bound to their WABA, wrong key detected.
mod token;
