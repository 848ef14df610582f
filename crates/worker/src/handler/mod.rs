//! One [`crate::consumer::Handler`] per queue the worker consumes: how its bodies are read,
//! which plan each message gets (`crate::plan`) and which effects carry it out
//! (`crate::effects`). Routing is by the queue a message came from; within a queue, by what
//! Meta's payload says it is.
//!
//! - [`AccountUpdateHandler`]: `wa.account_update` (`account_update` webhooks and the
//!   business integration webhooks).
//! - [`SignupHandler`]: `wa.signup_events` (Embedded Signup session events).
//! - [`CheckHandler`]: `wa.tenant_checks` (tenant checks queued by `reconcile`).

mod account_update;
mod check;
mod signup;

pub use account_update::AccountUpdateHandler;
pub use check::CheckHandler;
pub use signup::SignupHandler;
