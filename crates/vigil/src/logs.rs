//! `vigil logs`: reads, filters and aggregates vigil's JSON log lines (the
//! `vigil-logs` crate) from files, rotated `.gz` files or stdin.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use signal_hook::consts::TERM_SIGNALS;
use vigil_logs::{LogsArgs, LogsError, RunOptions};

use crate::EXIT_CONFIG;

pub fn run(args: &LogsArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    // Locked and buffered: millions of lines go through here.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut err = std::io::stderr().lock();
    let stop = Arc::new(AtomicBool::new(false));
    if args.follow
        && let Err(e) = stop_on_signals(&stop)
    {
        let _ = writeln!(err, "vigil logs: cannot handle Ctrl-C: {e}");
    }
    let opts = RunOptions {
        stop: Some(&stop),
        ..RunOptions::default()
    };
    let result = vigil_logs::run_with(args, &mut out, &mut err, tty, opts);
    // A flush failure is a write failure like any other.
    let result = result.and_then(|summary| out.flush().map(|()| summary).map_err(LogsError::Write));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        // `vigil logs … | head` closes the pipe early: that is a normal end.
        Err(LogsError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e @ LogsError::Write(_)) => {
            let _ = writeln!(err, "vigil logs: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            let _ = writeln!(err, "vigil logs: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// `--follow` ends on the first Ctrl-C (or SIGTERM) with the lines and the skipped
/// summary written; a second one ends the process at once.
fn stop_on_signals(stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    for &signal in TERM_SIGNALS {
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(stop))?;
        signal_hook::flag::register(signal, Arc::clone(stop))?;
    }
    Ok(())
}
