//! The `wa-onboard` binary run as an operator runs it: a child process with flags and
//! environment variables, checked by its exit code, stdout and stderr. One test binary, one
//! module per subcommand. Needs Redis at `REDIS_URL` (default `redis://127.0.0.1:6379/0`);
//! each test works under its own random key prefix and removes it afterwards.

/// `api`: settings refused at start, a tenant and its token read through the running API.
mod api;
/// `tenants` and the API on a Redis Cluster; `REDIS_URL`/`AMQP_URL` from files; a bad
/// `REDIS_URL` refused at start.
mod cluster;
/// deploy/: the dashboards and alert rules query only metrics the running binaries export.
mod deploy;
/// `graph-sim` as a child process on port 0: tokens, strict mode, failure flags, SIGTERM.
mod graph_sim;
/// Running the binary with a clean environment, a Redis prefix per test, polling.
mod helpers;
/// `ingress` and `worker` on the 3-node RabbitMQ cluster: an install applied across nodes.
mod rabbitmq_cluster;
/// `reconcile`: the installed (or named) tenants queued on wa.tenant_checks, confirmed.
mod reconcile;
/// docs/REFERENCE.md names every variable and subcommand `--help` shows, and marks as not
/// yet available nothing the binary has.
mod reference;
/// `send`: the raw file bytes, signed as Meta signs them, to a tiny local listener.
mod send;
/// Settings that cannot work refused at start, naming the variable; an unbounded
/// `wa.unrouted` left by an earlier version refused with what to do.
mod settings;
/// `signups funnel|get` against a real Redis, `signup-config`'s launch options, and the
/// ingress's `WA_SIGNUP_API_TOKEN`.
mod signups;
/// `tenants get|list|token` against a real Redis, arranged with `wa_store` directly.
mod tenants;
