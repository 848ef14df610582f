//! RabbitMQ for wa-onboard: the topology, a pool of publisher-confirm channels, and a
//! connection that comes back by itself.
//!
//! What this crate owns:
//!
//! - [`Topology`]: every exchange and queue name, and their idempotent declaration, so the
//!   ingress and the worker agree on one layout and tests can run side by side under their
//!   own prefix.
//! - [`Broker`]: a supervised connection to the first reachable node of `AMQP_URL`, with a pool
//!   of confirm channels. [`Broker::publish_all`] succeeds only when the broker has confirmed
//!   every message (`ack`, not returned); anything else is an error the caller turns into "try
//!   again later". Batches share a few confirm channels, and each learns its own outcome:
//!   another batch's returned message or nack never decides it (`confirms.rs` says how, why
//!   lapin needs it, and when a failing channel fails every batch on it).
//!   [`Broker::publish_all_unrouted_ok`] is the same for a topic exchange whose subscribers
//!   bind their own queues (tenant events): a message no queue takes is not an error. When the
//!   connection dies, or the broker blocks it under a resource alarm, the broker reports
//!   not-ready; a dead connection is rebuilt with backoff, re-declaring the topology, without
//!   a restart.
//! - [`BrokerConfig::declare_once`]: the start-up check that tells a queue RabbitMQ refuses to
//!   re-declare ([`BrokerError::Inequivalent`], e.g. a `wa.unrouted` made before its bound)
//!   from a broker that is merely not up yet.
//!
//! It knows nothing about HTTP, Meta's payloads or Redis: messages arrive as [`Outgoing`].

mod broker;
mod config;
mod confirms;
mod message;
mod pool;
mod queue;
mod startup;
mod topology;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use lapin;
pub use message::Outgoing;
pub use topology::{Topology, UNROUTED_MAX_LENGTH, UNROUTED_TTL, delay_label};

/// Why a publish or a broker operation failed. Every variant means "not stored": the caller
/// must not report success for the messages involved.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// There is no live connection right now (starting, or reconnecting).
    #[error("broker not connected")]
    NotConnected,
    /// The broker answered a publish with `basic.nack`.
    #[error("broker refused a message (nack)")]
    Nacked,
    /// The broker could not route a mandatory message, not even to the alternate exchange.
    #[error("broker returned an unroutable message: {0}")]
    Returned(String),
    /// The broker blocks publishing on this connection (a memory or disk alarm): nothing is
    /// published until it lifts.
    #[error("broker blocks publishing: {0}")]
    Blocked(String),
    /// The confirm channel was retired while this publish waited on it: a publish on it was
    /// abandoned while being sent (its confirm can no longer be read, so no return on the
    /// channel can be told apart), or too many confirms were left unread. A fresh channel
    /// takes its place; publishing again works.
    #[error("confirm channel retired; publish again")]
    ChannelRetired,
    /// No confirmation arrived in time.
    #[error("no publisher confirm within {0:?}")]
    ConfirmTimeout(std::time::Duration),
    /// The client library reported an error (I/O, protocol, closed channel).
    #[error("amqp: {0}")]
    Amqp(#[from] lapin::Error),
    /// A queue exists with other arguments than this version declares (an older version
    /// created it, or a bound changed); RabbitMQ refuses to change a queue's arguments.
    #[error(
        "queue `{queue}` exists with other arguments than this version declares ({arguments}); \
         RabbitMQ refused: {refusal}. A queue's arguments cannot change in place: move or read \
         what it holds, delete it (`rabbitmqctl delete_queue {queue}`) and start again, or give \
         the settings it was declared with; see docs/OPERATIONS.md, \"Queue arguments changed\""
    )]
    Inequivalent {
        /// The queue's name.
        queue: String,
        /// The arguments this version declares, `name = value, ...`.
        arguments: String,
        /// RabbitMQ's own words.
        refusal: String,
    },
    /// None of the configured URLs could be parsed.
    #[error("invalid AMQP_URL: {0}")]
    Config(String),
}

/// Result alias of this crate.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
