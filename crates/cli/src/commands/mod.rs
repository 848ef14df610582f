//! One module per subcommand.

pub mod dlq;
pub mod graph_sim;
pub mod ingress;
pub mod send;
pub mod signup_config;
pub mod signups;
pub mod tenants;
pub mod worker;
