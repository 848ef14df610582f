//! [`BrokerConfig`]: how to reach RabbitMQ, how much to publish in parallel, and how fast to
//! come back; and [`redact`], the only way an AMQP URL reaches a log. Parses, never connects.

use std::time::Duration;

use crate::{BrokerError, Result, Topology};

/// How to reach RabbitMQ and how much to publish in parallel.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Node URLs, tried in turn (`AMQP_URL`, comma-separated).
    pub urls: Vec<String>,
    /// Confirm channels in the pool, each shared by any number of batches in flight (taken in
    /// turn). One channel is one Erlang process on the broker.
    pub channels: usize,
    /// How long to wait for the broker to confirm a request's messages.
    pub confirm_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Shortest and longest pause between reconnection attempts (jittered, exponential).
    pub reconnect_min: Duration,
    /// See `reconnect_min`.
    pub reconnect_max: Duration,
    /// Shown in the RabbitMQ management UI for this connection.
    pub connection_name: String,
    /// Declare the topology on every (re)connection.
    pub topology: Topology,
}

impl BrokerConfig {
    /// Defaults for `urls` (a comma-separated `AMQP_URL`).
    ///
    /// # Errors
    ///
    /// [`BrokerError::Config`] when the list is empty or a URL does not parse.
    pub fn new(urls: &str, topology: Topology) -> Result<Self> {
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err(BrokerError::Config("no URL given".into()));
        }
        for url in &urls {
            url.parse::<lapin::uri::AMQPUri>()
                .map_err(|e| BrokerError::Config(format!("{}: {e}", redact(url))))?;
        }
        Ok(Self {
            urls,
            channels: 2,
            confirm_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            // Low on purpose: while the broker is away, an attempt costs one refused TCP
            // connection; once it is back, the next attempt is at most this far away.
            reconnect_max: Duration::from_millis(500),
            connection_name: "wa-onboard".into(),
            topology,
        })
    }
}

/// An AMQP URL with its password hidden, for logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("amqp://user:hunter2@host:5672/%2f"),
            "amqp://user:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host"), "amqp://host");
    }

    #[test]
    fn a_comma_separated_list_is_several_nodes() {
        let c = BrokerConfig::new("amqp://a:5672/%2f, amqp://b:5672/%2f", Topology::default())
            .expect("valid");
        assert_eq!(c.urls.len(), 2);
        assert!(BrokerConfig::new(" , ", Topology::default()).is_err());
        assert!(BrokerConfig::new("http://x", Topology::default()).is_err());
    }
}
