//! Flags and environment variables of every subcommand (SPEC.md "Interface"). Each flag has
//! an environment variable of the same meaning; secrets may also come from `<VAR>_FILE`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

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
    Ingress(IngressArgs),
    /// Sign a JSON file with the app secret and POST it, as Meta would.
    Send(SendArgs),
    /// Consume account_update events and signup session events: dedupe, tenant state, tokens.
    Worker(Box<crate::commands::worker::WorkerArgs>),
    /// List or replay the dead-letter queue.
    Dlq(crate::commands::dlq::DlqArgs),
    /// Look at tenants: their records and business tokens.
    Tenants(crate::commands::tenants::TenantsArgs),
    /// A local Graph API simulator, for runs without internet.
    GraphSim(crate::commands::graph_sim::GraphSimArgs),
    /// Embedded Signup sessions: the funnel, and one session's events.
    Signups(crate::commands::signups::SignupsArgs),
    /// Print the FB.login options that launch Embedded Signup with App-Only Install.
    SignupConfig(crate::commands::signup_config::SignupConfigArgs),
}

/// The app secret, given directly or as a file.
#[derive(Debug, Args)]
pub struct AppSecret {
    /// App secret(s), comma-separated; the first signs, any verifies (rotation).
    #[arg(long = "app-secret", env = "WA_APP_SECRET", hide_env_values = true)]
    pub value: Option<String>,
    /// File holding the app secret(s).
    #[arg(long = "app-secret-file", env = "WA_APP_SECRET_FILE")]
    pub file: Option<PathBuf>,
}

/// Where RabbitMQ is.
#[derive(Debug, Args)]
pub struct AmqpArgs {
    /// AMQP URL(s), comma-separated: the nodes of a cluster, tried in turn.
    #[arg(
        id = "amqp_url",
        long = "amqp-url",
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub url: String,
    /// Prefix of every exchange and queue name (`wa` gives `wa.webhooks`, ...).
    #[arg(
        id = "amqp_prefix",
        long = "amqp-prefix",
        env = "WA_AMQP_PREFIX",
        default_value = "wa"
    )]
    pub prefix: String,
}

/// Where Redis is, and under which key prefix.
#[derive(Debug, Args)]
pub struct RedisArgs {
    /// Redis URL.
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0",
        hide_env_values = true
    )]
    pub url: String,
    /// Prefix of every Redis key.
    #[arg(
        id = "redis_prefix",
        long = "redis-prefix",
        env = "WA_REDIS_PREFIX",
        default_value = "wa:"
    )]
    pub prefix: String,
}

/// The key that encrypts business tokens at rest, for the commands that read or write them.
#[derive(Debug, Args)]
pub struct TokenKeyArgs {
    /// Key encrypting business tokens at rest: 32 bytes, base64 (`openssl rand -base64 32`);
    /// `new,old` during a rotation (the first encrypts, any decrypts).
    #[arg(
        id = "token_key",
        long = "token-key",
        env = "WA_TOKEN_KEY",
        hide_env_values = true
    )]
    pub value: Option<String>,
    /// File holding the token key.
    #[arg(
        id = "token_key_file",
        long = "token-key-file",
        env = "WA_TOKEN_KEY_FILE"
    )]
    pub file: Option<PathBuf>,
}

/// `wa-onboard ingress`.
#[derive(Debug, Args)]
pub struct IngressArgs {
    /// Address to listen on.
    #[arg(long, env = "WA_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub secret: AppSecret,
    /// Token Meta echoes in the subscription handshake.
    #[arg(long, env = "WA_VERIFY_TOKEN", hide_env_values = true)]
    pub verify_token: Option<String>,
    /// File holding the verify token.
    #[arg(long, env = "WA_VERIFY_TOKEN_FILE")]
    pub verify_token_file: Option<PathBuf>,
    /// Largest webhook body accepted, in bytes (Meta sends up to 3 MB).
    #[arg(long, env = "WA_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Publisher-confirm channels in the pool.
    #[arg(long, env = "WA_PUBLISH_CHANNELS", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub publish_channels: u16,
    /// Most client connections open at once; past it a new one is closed unread.
    #[arg(long, env = "WA_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// Most bytes of webhook bodies held, across every request, before their signature is
    /// checked (at least WA_MAX_BODY_BYTES); past it a delivery gets 503 with Retry-After.
    #[arg(long, env = "WA_MAX_UNVERIFIED_BYTES", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub max_unverified_bytes: u64,
    /// Bearer the partner's backend sends with Embedded Signup session events
    /// (`POST /v1/signup-events`); unset, the route is off. At least 16 characters.
    #[arg(long, env = "WA_SIGNUP_API_TOKEN", hide_env_values = true)]
    pub signup_api_token: Option<String>,
    /// File holding the signup API token.
    #[arg(long, env = "WA_SIGNUP_API_TOKEN_FILE")]
    pub signup_api_token_file: Option<PathBuf>,
}

/// `wa-onboard send FILE`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The JSON file to send; its bytes are signed and sent unchanged.
    pub file: PathBuf,
    /// The webhook URL.
    #[arg(
        long,
        env = "WA_SEND_URL",
        default_value = "http://127.0.0.1:8080/webhooks/whatsapp"
    )]
    pub url: String,
    /// App secret to sign with (the first of a comma-separated list).
    #[arg(long = "secret", env = "WA_APP_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// File holding the app secret.
    #[arg(long = "secret-file", env = "WA_APP_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_consistent_flags() {
        super::Cli::command().debug_assert();
    }
}
