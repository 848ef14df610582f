//! The load generators: closed-loop (each task starts its next operation when the last one
//! ends: the full rate) and open-loop (a fixed pace: latency at a chosen rate), both measuring
//! latency and the CPU used over the measured window only. Knows nothing of what an operation
//! does.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use wa_broker::{Topology, lapin};

use crate::Summary;

/// Removes a phase's queues and exchanges.
pub(crate) async fn cleanup(url: &str, topology: &Topology) -> anyhow::Result<()> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    topology.delete(&conn.create_channel().await?).await?;
    Ok(())
}

/// Runs `op` from `tasks` closed-loop tasks: warm-up, then `duration` measured.
pub(crate) async fn closed_loop<F, Fut>(
    tasks: usize,
    warmup: Duration,
    duration: Duration,
    op: F,
) -> Summary
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now() + warmup;
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        crate::cpu::Cpu::now()
    });
    let end = start + duration;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors, mut i) = (Vec::with_capacity(1 << 14), 0usize, 0usize);
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    let ok = op(t, i).await;
                    i += 1;
                    if began >= start {
                        if ok {
                            lat.push(began.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    gather(handles, cpu_at_start, duration).await
}

/// Offers `rate` operations per second at a fixed pace spread over `tasks` tasks, for
/// `duration` after `warmup`. Latency runs from each operation's scheduled time, so a slow
/// answer that delays the next one is counted against it (no coordinated omission).
pub(crate) async fn open_loop<F, Fut>(
    tasks: usize,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    op: F,
) -> Summary
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let interval = Duration::from_secs_f64(tasks as f64 / rate.max(1.0));
    let begin = Instant::now();
    let (start, end) = (begin + warmup, begin + warmup + duration);
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        crate::cpu::Cpu::now()
    });
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                // Stagger the tasks across one interval.
                let mut next = begin + interval.mul_f64(t as f64 / tasks as f64);
                let (mut latencies, mut errors, mut i) = (Vec::new(), 0usize, 0usize);
                while next < end {
                    tokio::time::sleep_until(next.into()).await;
                    let ok = op(t, i).await;
                    if next >= start {
                        if ok {
                            latencies.push(next.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    next += interval;
                    i += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    gather(handles, cpu_at_start, duration).await
}

/// Collects the tasks' latencies and errors and the CPU used since `cpu_at_start`.
async fn gather(
    handles: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
    cpu_at_start: tokio::task::JoinHandle<crate::cpu::Cpu>,
    elapsed: Duration,
) -> Summary {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for h in handles {
        if let Ok((l, e)) = h.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let cpu = match cpu_at_start.await {
        Ok(at_start) => crate::cpu::Cpu::now().since(at_start),
        Err(_) => crate::cpu::Cpu::default(),
    };
    latencies.sort_unstable();
    Summary {
        ops: latencies.len(),
        errors,
        elapsed,
        latencies,
        cpu,
    }
}
