//! What the commands print on stdout, and the exit code of a lookup that found nothing
//! (docs/REFERENCE.md, "Exit codes").
//!
//! Owns writing to stdout: a closed stdout (`wa-onboard tenants list | head`) ends the output
//! quietly, any other write error is an error. Never reads flags, Redis or the broker.

use std::{
    io::{self, BufWriter, Stdout, Write},
    process::ExitCode,
};

use anyhow::Context;
use serde::Serialize;

/// Exit code of a lookup that found nothing: an unknown WABA, session or dead letter.
pub const NOT_FOUND: u8 = 3;

/// [`NOT_FOUND`] as an exit code.
pub fn not_found() -> ExitCode {
    ExitCode::from(NOT_FOUND)
}

/// A write error that is worth reporting: anything but a reader that went away.
fn reported(result: io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// Runs `write` on a locked stdout and flushes; a closed stdout is not an error.
///
/// # Errors
///
/// When writing fails for another reason than a closed stdout.
pub fn write_stdout(
    write: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    reported(write(&mut out).and_then(|()| out.flush()))
}

/// `value` as one line of compact JSON.
///
/// # Errors
///
/// When `value` cannot be encoded (`what` names it) or stdout fails.
pub fn json_line(value: &impl Serialize, what: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string(value).with_context(|| format!("encoding {what}"))?;
    write_stdout(|out| writeln!(out, "{json}"))
}

/// `value` as pretty-printed JSON.
///
/// # Errors
///
/// When `value` cannot be encoded (`what` names it) or stdout fails.
pub fn json_pretty(value: &impl Serialize, what: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(value).with_context(|| format!("encoding {what}"))?;
    write_stdout(|out| writeln!(out, "{json}"))
}

/// Every value of `values` as one line of compact JSON, stopping early if stdout closes.
///
/// # Errors
///
/// When writing fails for another reason than a closed stdout.
pub fn json_lines<T: Serialize>(values: impl IntoIterator<Item = T>) -> anyhow::Result<()> {
    let mut lines = JsonLines::stdout();
    for value in values {
        if !lines.push(&value)? {
            break;
        }
    }
    lines.finish()
}

/// Values printed one compact JSON object a line, buffered; [`JsonLines::finish`] flushes.
pub struct JsonLines {
    out: BufWriter<Stdout>,
}

impl JsonLines {
    /// Lines to stdout.
    pub fn stdout() -> Self {
        Self {
            out: BufWriter::new(io::stdout()),
        }
    }

    /// Writes `value` as one line; `false` when stdout is closed (nothing more to print).
    ///
    /// # Errors
    ///
    /// When writing fails for another reason than a closed stdout.
    pub fn push(&mut self, value: &impl Serialize) -> anyhow::Result<bool> {
        let written = serde_json::to_writer(&mut self.out, value)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match written {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
        }
    }

    /// Flushes what is buffered; a closed stdout is not an error.
    ///
    /// # Errors
    ///
    /// When flushing fails for another reason than a closed stdout.
    pub fn finish(mut self) -> anyhow::Result<()> {
        reported(self.out.flush())
    }
}
