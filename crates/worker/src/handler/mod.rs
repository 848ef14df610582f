//! One [`crate::consumer::Handler`] per queue the worker consumes: how its bodies are read,
//! which plan each message gets (`crate::plan`) and which effects carry it out
//! (`crate::effects`). Routing is by the queue a message came from; within a queue, by what
//! Meta's payload says it is.
//!
//! - [`AccountUpdateHandler`]: `wa.account_update` (`account_update` webhooks and the
//!   business integration webhooks).
//! - [`SignupHandler`]: `wa.signup_events` (Embedded Signup session events).

mod account_update;
mod signup;

pub use account_update::AccountUpdateHandler;
pub use signup::SignupHandler;
