//! `vigil logs`: reads, filters and aggregates vigil's JSON log lines (the
//! `vigil-logs` crate) from files, rotated `.gz` files or stdin.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use vigil_logs::{LogsArgs, LogsError};

use crate::EXIT_CONFIG;

pub fn run(args: &LogsArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    // Locked and buffered: millions of lines go through here.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut err = std::io::stderr().lock();
    let result = vigil_logs::run(args, &mut out, &mut err, tty);
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
