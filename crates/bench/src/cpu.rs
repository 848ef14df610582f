//! CPU time of this process, of the RabbitMQ node (beam.smp) and of the receiver under test
//! (its whole process tree), and peak RSS, read from `/proc`, so a report can say where each
//! request's CPU goes on a machine they all share.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

/// The root pid of the receiver under test when it runs as a process of its own (0: none);
/// the CPU of its process tree is then reported apart from the load generator's.
pub static CHILD: AtomicU32 = AtomicU32::new(0);

/// CPU time consumed so far by this process, the broker, and the child ingress if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// This process (load generator and, when the ingress runs in-process, the ingress).
    pub own: Duration,
    /// The RabbitMQ node.
    pub broker: Duration,
    /// The receiver's process tree, when it runs as a process of its own.
    pub child: Duration,
}

/// Peak resident memory (`VmHWM`) of a process tree, in KiB: the sum over its live processes.
pub fn tree_peak_rss_kib(root: u32) -> Option<u64> {
    let peaks: Vec<u64> = tree(root).into_iter().filter_map(peak_rss_kib).collect();
    (!peaks.is_empty()).then(|| peaks.iter().sum())
}

/// Every live process id, from `/proc`.
pub(crate) fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// `root` and every live process descending from it.
pub(crate) fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = pids()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The parent pid is the second field after the command name's closing ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found
}

/// Peak resident memory (`VmHWM`) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU of `pid` (or `self`), in clock ticks.
pub(crate) fn ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The RabbitMQ node: the busiest `beam.smp` when first asked (another node, e.g. the failure
/// suite's, may run beside it), then always that one, so two readings are of one process.
fn broker_pid() -> Option<String> {
    static PID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PID.get_or_init(|| {
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let pid = entry.file_name().into_string().ok()?;
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                (comm.trim() == "beam.smp").then_some(())?;
                Some((ticks(&pid)?, pid))
            })
            .max()
            .map(|(_, pid)| pid)
    })
    .clone()
}

/// Clock ticks are 100 per second on Linux.
pub(crate) fn duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 10)
}

impl Cpu {
    /// Reads both counters now.
    pub fn now() -> Self {
        let child = CHILD.load(Ordering::Relaxed);
        Self {
            own: duration(ticks("self").unwrap_or(0)),
            broker: duration(broker_pid().and_then(|p| ticks(&p)).unwrap_or(0)),
            child: duration(if child == 0 {
                0
            } else {
                tree(child)
                    .into_iter()
                    .filter_map(|pid| ticks(&pid.to_string()))
                    .sum()
            }),
        }
    }

    /// What was consumed since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            own: self.own.saturating_sub(earlier.own),
            broker: self.broker.saturating_sub(earlier.broker),
            child: self.child.saturating_sub(earlier.child),
        }
    }

    /// Microseconds of CPU per operation: this process, the broker, the receiver's tree.
    pub fn per_op(&self, ops: usize) -> (f64, f64, f64) {
        let ops = ops.max(1) as f64;
        let us = |d: Duration| d.as_secs_f64() * 1e6 / ops;
        (us(self.own), us(self.broker), us(self.child))
    }
}
