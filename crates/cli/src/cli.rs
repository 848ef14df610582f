//! The command line at its top: `wa-onboard` and its subcommands (docs/REFERENCE.md,
//! "Subcommands"). Each subcommand's flags belong to its module under `commands`.
//!
//! Owns the list of subcommands and the telemetry service name each one reports under.
//! Never runs a command.

use clap::{Parser, Subcommand};

use crate::commands::{
    api, dlq, graph_sim, ingress, reconcile, send, signup_config, signups, tenants, worker,
};

/// Onboards WhatsApp Business customers through Embedded Signup with App-Only Install.
#[derive(Debug, Parser)]
#[command(name = "wa-onboard", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive Meta's webhooks, verify them and publish each change to RabbitMQ.
    Ingress(ingress::IngressArgs),
    /// Sign a JSON file with the app secret and POST it, as Meta would.
    Send(send::SendArgs),
    /// Consume account_update events, signup session events and tenant checks.
    Worker(Box<worker::WorkerArgs>),
    /// List or replay the dead-letter queue.
    Dlq(dlq::DlqArgs),
    /// Queue a check of named tenants, or of every installed one, for the workers.
    Reconcile(reconcile::ReconcileArgs),
    /// Look at tenants: their records and business tokens.
    Tenants(tenants::TenantsArgs),
    /// A local Graph API simulator, for runs without internet.
    GraphSim(graph_sim::GraphSimArgs),
    /// Embedded Signup sessions: the funnel, and one session's events.
    Signups(signups::SignupsArgs),
    /// Print the FB.login options that launch Embedded Signup with App-Only Install.
    SignupConfig(signup_config::SignupConfigArgs),
    /// The internal HTTP API for the partner's own services: tenants, tokens, the funnel.
    Api(api::ApiArgs),
}

impl Command {
    /// The service name this command's logs and traces carry; `None` for the commands that
    /// start no telemetry (`send`, `dlq`, `signup-config`).
    pub fn telemetry_name(&self) -> Option<&'static str> {
        match self {
            Self::Ingress(_) => Some("wa-onboard-ingress"),
            Self::Worker(_) => Some("wa-onboard-worker"),
            Self::Tenants(_) => Some("wa-onboard-tenants"),
            Self::GraphSim(_) => Some("wa-onboard-graph-sim"),
            Self::Signups(_) => Some("wa-onboard-signups"),
            Self::Api(_) => Some("wa-onboard-api"),
            Self::Reconcile(_) => Some("wa-onboard-reconcile"),
            Self::Send(_) | Self::Dlq(_) | Self::SignupConfig(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_consistent_flags() {
        super::Cli::command().debug_assert();
    }
}
