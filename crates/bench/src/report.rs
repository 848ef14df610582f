//! The report of `wa-bench ingress`: a line per phase as it ends, then one Markdown table of
//! every phase and the ratios of the full-load rates (each receiver against the raw ceiling,
//! the first receiver against every other). Pure formatting of figures already measured.

use std::fmt::Write as _;

use crate::Summary;

/// One measured phase.
pub struct Row {
    round: usize,
    name: String,
    load: &'static str,
    summary: Summary,
    /// Peak RSS of the receiver's process tree, KiB.
    rss_kib: Option<u64>,
}

impl Row {
    /// A phase of `name` at `load` (`full` or `half`).
    pub fn new(
        round: usize,
        name: &str,
        load: &'static str,
        summary: Summary,
        rss_kib: Option<u64>,
    ) -> Self {
        Self {
            round,
            name: name.to_owned(),
            load,
            summary,
            rss_kib,
        }
    }

    /// CPU milliseconds per 1,000 operations: receiver tree, this process, RabbitMQ.
    fn cpu_per_1k(&self) -> (f64, f64, f64) {
        // Microseconds per operation are milliseconds per thousand.
        self.summary.cpu.per_op(self.summary.ops)
    }
}

/// Every phase of the run.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

impl Report {
    /// Records a phase and prints its line at once.
    #[allow(clippy::print_stdout)] // Progress is part of the report.
    pub fn add(&mut self, row: Row) {
        println!(
            "round {}: {}",
            row.round,
            row.summary.line(&format!("{} {}", row.name, row.load))
        );
        self.rows.push(row);
    }

    /// The Markdown table of every phase.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| receiver | load | round | accepted/s | p50 ms | p99 ms | max ms | errors | receiver CPU ms/1k | bench CPU ms/1k | RabbitMQ CPU ms/1k | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            let s = &row.summary;
            let (own, broker, child) = row.cpu_per_1k();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.1} | {} |",
                row.name,
                row.load,
                row.round,
                s.rate(),
                crate::ms(s.quantile(0.50)),
                crate::ms(s.quantile(0.99)),
                crate::ms(s.latencies.last().copied().unwrap_or_default()),
                s.errors,
                opt((child > 0.0).then_some(child), 1),
                own,
                broker,
                opt(row.rss_kib.map(|k| k as f64 / 1024.0), 1),
            );
        }
        out
    }

    /// Mean full-load rate of `name` over the rounds.
    fn full_rate(&self, name: &str) -> Option<f64> {
        let rates: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| r.name == name && r.load == "full")
            .map(|r| r.summary.rate())
            .collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
    }

    /// Ratios of full-load rates: every receiver against `ceiling`, the first receiver
    /// against each of the others.
    pub fn ratios(&self, ceiling: &str) -> String {
        let mut names: Vec<&str> = Vec::new();
        for row in &self.rows {
            if row.name != ceiling && !names.contains(&row.name.as_str()) {
                names.push(&row.name);
            }
        }
        let mut out = String::new();
        let Some(raw) = self.full_rate(ceiling) else {
            return out;
        };
        for name in &names {
            if let Some(rate) = self.full_rate(name) {
                let _ = writeln!(
                    out,
                    "ratio {name}/{ceiling} = {:.2} ({rate:.0} / {raw:.0} per second)",
                    rate / raw
                );
            }
        }
        if let Some((first, others)) = names.split_first()
            && let Some(rate) = self.full_rate(first)
        {
            for other in others {
                if let Some(theirs) = self.full_rate(other) {
                    let _ = writeln!(
                        out,
                        "ratio {first}/{other} = {:.2} ({rate:.0} / {theirs:.0} per second)",
                        rate / theirs
                    );
                }
            }
        }
        out
    }
}
