//! CPU spent by the services a scaling phase runs against (the processes listening on the
//! ports of its `AMQP_URL` and `REDIS_URL` nodes), by the worker processes, and by the whole
//! machine, read from `/proc`, so the scaling table can say which of them the cores went to.
//! Owns the port-to-process lookup; knows nothing of the phases.

use std::time::Duration;

use crate::cpu::{duration, pids, ticks, tree};

/// The port of each comma-separated URL (`scheme://[user:pass@]host[:port][/path]`), or the
/// scheme's default (`amqp` 5672, `redis` 6379).
pub(crate) fn ports(urls: &str) -> Vec<u16> {
    urls.split(',')
        .filter_map(|url| {
            let (scheme, rest) = url.trim().split_once("://")?;
            let authority = rest.split('/').next()?;
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            match host_port.rsplit_once(':') {
                Some((_, port)) => port.parse().ok(),
                None => match scheme {
                    "amqp" => Some(5672),
                    "amqps" => Some(5671),
                    "redis" | "rediss" => Some(6379),
                    _ => None,
                },
            }
        })
        .collect()
}

/// Socket inodes listening (state `0A`) on any of `ports`, IPv4 or IPv6.
fn listening_inodes(ports: &[u16]) -> Vec<String> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let port = u16::from_str_radix(fields.get(1)?.rsplit_once(':')?.1, 16).ok()?;
                    (*fields.get(3)? == "0A" && ports.contains(&port))
                        .then(|| fields.get(9).map(|i| (*i).to_owned()))?
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The processes that listen on any of `ports` (each once).
pub(crate) fn listeners(ports: &[u16]) -> Vec<u32> {
    let sockets: Vec<String> = listening_inodes(ports)
        .into_iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let mut pids: Vec<u32> = pids()
        .filter_map(|pid| {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|link| sockets.iter().any(|s| link.as_os_str() == s.as_str()))
                .then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// CPU consumed so far by `pids` (each with its descendants).
pub(crate) fn cpu_of(pids: &[u32]) -> Duration {
    duration(
        pids.iter()
            .flat_map(|pid| tree(*pid))
            .filter_map(|pid| ticks(&pid.to_string()))
            .sum(),
    )
}

/// CPU the whole machine spent so far outside idle and I/O wait (first line of `/proc/stat`).
pub(crate) fn machine() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        // user nice system idle iowait irq softirq steal; guest time is already in user.
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    let busy = fields.iter().sum::<u64>()
        - fields.get(3).copied().unwrap_or(0)
        - fields.get(4).copied().unwrap_or(0);
    duration(busy)
}

#[cfg(test)]
mod tests {
    use super::ports;

    #[test]
    fn reads_the_port_of_each_node_url() {
        assert_eq!(
            ports("amqp://guest:guest@127.0.0.1:5681/%2f, amqp://h:5682,amqp://h"),
            [5681, 5682, 5672]
        );
        assert_eq!(
            ports("redis://127.0.0.1:6379/0,rediss://:p@ss@h:7001,redis://h"),
            [6379, 7001, 6379]
        );
    }
}
