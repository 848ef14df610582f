//! One module per subcommand.

pub mod ingress;
pub mod send;
