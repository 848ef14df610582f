//! The 3-node RabbitMQ cluster on loopback that `scripts/rabbitmq-cluster.sh` starts: its
//! nodes' names (`WA_CLUSTER_RABBITMQ_NODES`) and AMQP URLs (`WA_CLUSTER_AMQP_URL`, a
//! comma-separated list as `AMQP_URL` takes it), started once per test binary when it is not
//! running, and what `rabbitmqctl` says of a quorum queue (leader, members, online) and of a
//! connection's channels.
//!
//! Reads the environment and runs the RabbitMQ CLI tools; never stops a node (a test that
//! does owns that), and never touches the machine's own RabbitMQ.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::OnceLock,
};

/// The cluster's AMQP URLs by default: `wa-c1..3@localhost` on 127.0.0.1:5681..5683.
const DEFAULT_URLS: &str = "amqp://guest:guest@127.0.0.1:5681/%2f,\
                            amqp://guest:guest@127.0.0.1:5682/%2f,\
                            amqp://guest:guest@127.0.0.1:5683/%2f";
/// The cluster's node names by default, in the order of [`DEFAULT_URLS`].
const DEFAULT_NODES: &str = "wa-c1@localhost,wa-c2@localhost,wa-c3@localhost";

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its Erlang node name, for `rabbitmqctl -n`.
    pub name: String,
    /// Its own AMQP URL.
    pub url: String,
}

/// `WA_CLUSTER_AMQP_URL`: every node's URL, comma-separated (what `AMQP_URL` takes).
pub fn amqp_cluster_url() -> String {
    std::env::var("WA_CLUSTER_AMQP_URL").unwrap_or_else(|_| DEFAULT_URLS.to_owned())
}

/// The cluster's nodes: `WA_CLUSTER_RABBITMQ_NODES` (comma-separated names) paired in order
/// with the URLs of [`amqp_cluster_url`].
///
/// # Panics
///
/// When the two lists are not the same length.
pub fn rabbitmq_cluster() -> Vec<ClusterNode> {
    let names =
        std::env::var("WA_CLUSTER_RABBITMQ_NODES").unwrap_or_else(|_| DEFAULT_NODES.to_owned());
    let names: Vec<&str> = split(&names);
    let urls = amqp_cluster_url();
    let urls: Vec<&str> = split(&urls);
    assert_eq!(
        names.len(),
        urls.len(),
        "WA_CLUSTER_RABBITMQ_NODES and WA_CLUSTER_AMQP_URL must list the same nodes"
    );
    names
        .into_iter()
        .zip(urls)
        .map(|(name, url)| ClusterNode {
            name: name.to_owned(),
            url: url.to_owned(),
        })
        .collect()
}

fn split(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Starts the cluster with `scripts/rabbitmq-cluster.sh` when it is not running, or starts an
/// application a failed test left stopped (once per test binary), and waits until every node
/// takes connections. With `WA_CLUSTER_AMQP_URL` set, the cluster is the caller's and is only
/// used.
///
/// # Panics
///
/// When the script fails.
pub fn ensure_rabbitmq_cluster() {
    static STARTED: OnceLock<bool> = OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        if std::env::var_os("WA_CLUSTER_AMQP_URL").is_some() {
            return true;
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rabbitmq-cluster.sh");
        Command::new(script)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        started,
        "the RabbitMQ cluster is not running and scripts/rabbitmq-cluster.sh could not start it"
    );
}

/// A quorum queue as `rabbitmqctl list_queues name leader members online` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumQueue {
    /// The node whose Raft member leads the queue.
    pub leader: String,
    /// Every node holding a member (a replica).
    pub members: Vec<String>,
    /// The members running now.
    pub online: Vec<String>,
}

/// What `node` says of quorum queue `queue` in vhost `/` (`None`: no such queue, or the node
/// does not answer).
pub fn quorum_queue(node: &str, queue: &str) -> Option<QuorumQueue> {
    let rows = rabbitmqctl_json(&[
        "-n",
        node,
        "-q",
        "list_queues",
        "-p",
        "/",
        "name",
        "leader",
        "members",
        "online",
    ])?;
    let row = rows.as_array()?.iter().find(|r| r["name"] == queue)?;
    let names = |field: &str| -> Vec<String> {
        row[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(QuorumQueue {
        leader: row["leader"].as_str()?.to_owned(),
        members: names("members"),
        online: names("online"),
    })
}

/// How many channels the connection named `connection_name` (its client-provided name) has
/// open on the machine's default RabbitMQ node (the one [`amqp_url`](crate::amqp_url) points
/// to unless `AMQP_URL` says otherwise), as `rabbitmqctl list_connections` says (`None`: no
/// such connection, or the node does not answer).
pub fn connection_channels(connection_name: &str) -> Option<u64> {
    let rows = rabbitmqctl_json(&["-q", "list_connections", "client_properties", "channels"])?;
    // `client_properties` is a list of `[key, type, value]` triples.
    let named = |row: &&serde_json::Value| {
        row["client_properties"].as_array().is_some_and(|props| {
            props
                .iter()
                .any(|p| p[0] == "connection_name" && p[2] == connection_name)
        })
    };
    rows.as_array()?.iter().find(named)?["channels"].as_u64()
}

/// What `rabbitmqctl ARGS --formatter json` prints, parsed (`None` if it fails).
fn rabbitmqctl_json(args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .args(["--formatter", "json"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_pair_names_with_urls_in_order() {
        let nodes = rabbitmq_cluster();
        if std::env::var_os("WA_CLUSTER_AMQP_URL").is_none() {
            assert_eq!(nodes.len(), 3);
            assert_eq!(nodes[1].name, "wa-c2@localhost");
            assert_eq!(nodes[1].url, "amqp://guest:guest@127.0.0.1:5682/%2f");
        }
    }
}
