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

/// Whether a line written to file descriptor `fd` (1 stdout, 2 stderr) can reach
/// anyone: not when it is `/dev/null`, which is also what a stream closed at start
/// (`2>&-`) becomes (Rust's runtime opens `/dev/null` in its place, and every write
/// then succeeds). A secret shown only once must not be "shown" there.
pub fn reaches_someone(fd: u8) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let null = std::fs::metadata("/dev/null");
    let stream = std::fs::metadata(format!("/proc/self/fd/{fd}"));
    match (stream, null) {
        (Ok(stream), Ok(null)) => {
            !(stream.file_type().is_char_device() && stream.rdev() == null.rdev())
        }
        // Without /proc (or /dev/null) there is no telling: written as usual.
        _ => true,
    }
}
