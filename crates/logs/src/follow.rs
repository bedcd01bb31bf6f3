//! `--follow`: keeps reading one file as it grows, by polling every 200 ms, and
//! reopens it when it is rotated (the path names a new inode, or the file shrank).
//! What was still unread in the old file is read before switching.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::error::LogsError;
use crate::line::LogLine;
use crate::malformed::Malformed;
use crate::split::{Block, Splitter};

/// How often the file is checked for new lines and rotation.
pub const POLL: Duration = Duration::from_millis(200);

/// What identifies the file behind a path.
fn file_id(m: &Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        (0, 0)
    }
}

/// Passes every line of a block on, in order.
fn emit(
    block: &Block,
    on_line: &mut dyn FnMut(Result<LogLine, Malformed>) -> Result<(), LogsError>,
) -> Result<(), LogsError> {
    block.parse().into_iter().try_for_each(on_line)
}

/// Reads what `file` has past `pos`.
fn drain(
    file: &mut File,
    pos: &mut u64,
    lines: &mut Splitter,
    on_line: &mut dyn FnMut(Result<LogLine, Malformed>) -> Result<(), LogsError>,
    path: &Path,
) -> Result<(), LogsError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(LogsError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        *pos += n as u64;
        emit(&lines.push(&buf[..n]), on_line)?;
    }
}

/// Follows `path` from byte `start` until `stop` returns true (checked after each
/// poll), passing every line to `on_line`.
pub fn follow(
    path: &Path,
    start: u64,
    stop: &dyn Fn() -> bool,
    on_line: &mut dyn FnMut(Result<LogLine, Malformed>) -> Result<(), LogsError>,
) -> Result<(), LogsError> {
    let open_err = |source| LogsError::Open {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(open_err)?;
    let mut id = file_id(&file.metadata().map_err(open_err)?);
    let mut pos = file.seek(SeekFrom::Start(start)).map_err(open_err)?;
    let mut lines = Splitter::default();
    loop {
        drain(&mut file, &mut pos, &mut lines, on_line, path)?;
        if stop() {
            return Ok(());
        }
        let rotated = match fs::metadata(path) {
            Ok(m) if file_id(&m) != id => true,
            Ok(m) => m.len() < pos,
            // Between the rename and the new file: keep the old one for now.
            Err(_) => false,
        };
        if rotated && let Ok(new) = File::open(path) {
            // The old file is finished: a last line without newline is complete.
            drain(&mut file, &mut pos, &mut lines, on_line, path)?;
            emit(&lines.finish(), on_line)?;
            id = file_id(&new.metadata().map_err(open_err)?);
            file = new;
            pos = 0;
            continue;
        }
        std::thread::sleep(POLL);
    }
}
