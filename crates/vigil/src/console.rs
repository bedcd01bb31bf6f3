//! Lines for the person at the terminal. `println!` and `eprintln!` panic when a line
//! cannot be written (a pipe closed early, `2>/dev/full`): exit 101 and a backtrace
//! instead of the command's own outcome, and under `vigil up` after the first start's
//! admin key was stored but never shown. These write what they can and say whether it
//! was written.

/// A line to stderr (messages, hints, errors); one nobody can read is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] without the line's end (a progress line redrawn in place).
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// A line to stdout (a command's output): `Err` when it could not be written (the
/// reader is gone), for the caller to decide what that costs.
macro_rules! put {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

/// [`put!`] without the line's end.
macro_rules! put_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)
    }};
}
