//! One module per subcommand, each owning its flags (`…Args`) and its `run`. A command uses
//! the shared flag groups (`crate::flags`) and output helpers (`crate::output`), never
//! another command.

pub mod api;
pub mod dlq;
pub mod graph_sim;
pub mod ingress;
pub mod reconcile;
pub mod send;
pub mod signup_config;
pub mod signups;
pub mod tenants;
pub mod worker;
