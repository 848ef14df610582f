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

/// The processes that listen on any of `ports` (each once); `None` when no socket listens
/// on them or one of those sockets has no process found (its `/proc/<pid>/fd` unreadable,
/// e.g. a server running as another user), so its CPU cannot be measured.
pub(crate) fn listeners(ports: &[u16]) -> Option<Vec<u32>> {
    let sockets: Vec<String> = listening_inodes(ports)
        .into_iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let links = pids().filter_map(|pid| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        let links = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .map(|link| link.to_string_lossy().into_owned())
            .collect();
        Some((pid, links))
    });
    owners(&sockets, links)
}

/// The processes among `fds` (a process and the targets of its file descriptors) holding
/// `sockets`, each once; `None` when `sockets` is empty or one of them has no holder.
fn owners(sockets: &[String], fds: impl Iterator<Item = (u32, Vec<String>)>) -> Option<Vec<u32>> {
    let mut held = vec![false; sockets.len()];
    let mut pids = Vec::new();
    for (pid, links) in fds {
        for link in links {
            if let Some(i) = sockets.iter().position(|s| *s == link) {
                held[i] = true;
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    (!sockets.is_empty() && held.iter().all(|h| *h)).then_some(pids)
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
    use super::{owners, ports};

    fn fds(table: &[(u32, &[&str])]) -> impl Iterator<Item = (u32, Vec<String>)> {
        table
            .iter()
            .map(|(pid, links)| (*pid, links.iter().map(|l| (*l).to_owned()).collect()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_listeners_are_known_only_when_every_listening_socket_has_its_process() {
        let sockets = ["socket:[11]".to_owned(), "socket:[12]".to_owned()];
        let all = [
            (40, &["/dev/null", "socket:[11]"][..]),
            (41, &["socket:[12]", "socket:[99]"][..]),
            (42, &["pipe:[5]"][..]),
        ];
        assert_eq!(owners(&sockets, fds(&all)), Some(vec![40, 41]));
        // Process 41's descriptors could not be read: its socket has no holder.
        assert_eq!(owners(&sockets, fds(&all[..1])), None);
        // Nothing listens on the ports.
        assert_eq!(owners(&[], fds(&all)), None);
    }

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
