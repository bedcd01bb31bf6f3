//! `vigil-logs`: the library behind `vigil logs`. It reads vigil's JSON log lines
//! from plain and gzip files and stdin, merges them in time order, filters them,
//! prints them (raw, pretty or JSON) or aggregates them, and can follow the current
//! file across rotations. Malformed lines are counted, never fatal.
//!
//! The flow: [`source`] opens inputs and cuts them into blocks ([`split`]) that
//! are parsed on a thread pool, [`line`] parses each line, [`merge`] orders
//! them, [`filter`] selects, then [`output`] prints or [`aggregate`] counts;
//! [`follow`] carries on with the last file.

pub mod aggregate;
pub mod args;
pub mod error;
pub mod filter;
pub mod follow;
pub mod level;
pub mod line;
pub mod malformed;
pub mod merge;
pub mod output;
pub mod scan;
pub mod source;
pub mod split;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

pub use args::{CountBy, LogsArgs};
pub use error::LogsError;
pub use level::Level;
pub use line::LogLine;
pub use malformed::{Malformed, Skipped};

use aggregate::Aggregates;
use filter::Filter;
use merge::Merger;
use output::{Format, Printer};
use source::{Input, Source};

/// What a run saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines that passed the filters.
    pub matched: u64,
    /// Non-empty lines read, skipped ones included.
    pub read: u64,
    /// Lines skipped as malformed, by kind.
    pub skipped: Skipped,
}

/// What [`run`] takes from its surroundings, made explicit for tests and for a
/// binary that wants to stop `--follow` on Ctrl-C.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// The time a relative `--since` counts back from.
    pub now: OffsetDateTime,
    /// `--follow` ends once this is set (checked every 200 ms); `None` follows until the
    /// process is interrupted.
    pub stop: Option<&'a AtomicBool>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            now: OffsetDateTime::now_utc(),
            stop: None,
        }
    }
}

/// Runs `vigil logs` with the current time, following (with `--follow`) until the
/// process is interrupted.
pub fn run(
    args: &LogsArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    stdout_is_tty: bool,
) -> Result<Summary, LogsError> {
    run_with(args, stdout, stderr, stdout_is_tty, RunOptions::default())
}

/// Where matching lines go: printed, or fed to the aggregates.
struct Sink<'a> {
    filter: Filter,
    printer: Printer,
    aggregates: Aggregates,
    out: &'a mut dyn Write,
    summary: Summary,
    follow: bool,
}

impl Sink<'_> {
    fn line(&mut self, line: Result<LogLine, Malformed>) -> Result<(), LogsError> {
        self.summary.read += 1;
        match line {
            Err(kind) => self.summary.skipped.add(kind),
            Ok(line) => self.matched(&line)?,
        }
        Ok(())
    }

    fn matched(&mut self, line: &LogLine) -> Result<(), LogsError> {
        if !self.filter.matches(line) {
            return Ok(());
        }
        self.summary.matched += 1;
        if self.aggregates.is_empty() {
            self.printer
                .print(line, self.out)
                .map_err(LogsError::Write)?;
            if self.follow {
                self.out.flush().map_err(LogsError::Write)?;
            }
        } else {
            self.aggregates.add(line);
        }
        Ok(())
    }
}

/// [`run`] with the time and the stop signal given.
pub fn run_with(
    args: &LogsArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    stdout_is_tty: bool,
    opts: RunOptions<'_>,
) -> Result<Summary, LogsError> {
    let filter = Filter::new(args, opts.now)?;
    let inputs = source::expand(&args.files)?;
    let followed = if args.follow {
        match inputs.last() {
            // Following re-opens the file and reads what is appended: a FIFO's re-open
            // would wait for a writer, deaf to Ctrl-C, and could not seek if one came.
            Some(Input::File(p)) if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) => {
                return Err(LogsError::FollowNeedsFile {
                    what: format!("{}, which is not a regular file", p.display()),
                });
            }
            Some(Input::File(p)) => Some(p.clone()),
            _ => {
                return Err(LogsError::FollowNeedsFile {
                    what: "stdin".to_owned(),
                });
            }
        }
    } else {
        None
    };
    let sources = inputs
        .iter()
        .map(Source::open)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &followed
        && sources.last().is_some_and(|s| s.gzip)
    {
        return Err(LogsError::FollowNeedsFile {
            what: format!("gzip file {}", path.display()),
        });
    }

    let format = if args.json {
        Format::Json
    } else if args.pretty {
        Format::Pretty
    } else {
        Format::Raw
    };
    let mut sink = Sink {
        filter,
        printer: Printer {
            format,
            tty: stdout_is_tty,
        },
        aggregates: Aggregates::new(args),
        out: stdout,
        summary: Summary::default(),
        follow: args.follow,
    };

    let mut merger = Merger::new(sources);
    for line in merger.by_ref() {
        sink.matched(&line)?;
    }
    let mut start = 0;
    for s in merger.sources() {
        sink.summary.read += s.read;
        sink.summary.skipped.merge(&s.skipped);
        if let Some(e) = &s.error {
            let _ = writeln!(
                stderr,
                "warning: stopped reading {} early: {e}; the lines before it are used",
                s.name()
            );
        }
        if s.path.is_some() && s.path == followed {
            start = s.consumed;
        }
    }
    drop(merger);

    if let Some(path) = &followed {
        let stop = || opts.stop.is_some_and(|s| s.load(Ordering::Relaxed));
        follow::follow(path, start, &stop, &mut |l| sink.line(l))?;
    }

    let Sink {
        aggregates,
        out,
        summary,
        ..
    } = sink;
    aggregates
        .finish(args.json, out)
        .map_err(LogsError::Write)?;
    out.flush().map_err(LogsError::Write)?;
    if summary.skipped.total() > 0 {
        let _ = writeln!(stderr, "{}", summary.skipped);
    }
    Ok(summary)
}
