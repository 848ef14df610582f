//! CPU time of this process and of the RabbitMQ node (beam.smp), read from `/proc`, so a
//! report can say where each request's CPU goes on a machine the two share.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

/// The pid of an ingress running as a child process, when the benchmark runs it that way
/// (0: none); its CPU is then reported apart from the load generator's.
pub static CHILD: AtomicU32 = AtomicU32::new(0);

/// CPU time consumed so far by this process, the broker, and the child ingress if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// This process (load generator and, when the ingress runs in-process, the ingress).
    pub own: Duration,
    /// The RabbitMQ node.
    pub broker: Duration,
    /// The ingress child process, when there is one.
    pub child: Duration,
}

/// Peak resident memory (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn broker_pid() -> Option<String> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
}

/// Clock ticks are 100 per second on Linux.
fn duration(ticks: u64) -> Duration {
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
                ticks(&child.to_string()).unwrap_or(0)
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

    /// Microseconds of CPU per operation: this process, the broker, the child ingress.
    pub fn per_op(&self, ops: usize) -> (f64, f64, f64) {
        let ops = ops.max(1) as f64;
        let us = |d: Duration| d.as_secs_f64() * 1e6 / ops;
        (us(self.own), us(self.broker), us(self.child))
    }
}
