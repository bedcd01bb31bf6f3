//! The active file and its rotation. Lines arrive in chunks of whole lines (the
//! logger's writer thread writes what accumulated since its last round); a chunk that
//! would pass the size limit is cut after its last line that fits, so every line lands
//! whole in exactly one file. A write that fails part way is cut back off the file,
//! the file is reopened when it is deleted or moved away, and one process at a time
//! writes a directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::compress::Compressor;
use crate::config::FileConfig;
use crate::faults::{FileFaults, Operation};
use crate::naming::{ACTIVE, LOCK, rotated_path};

/// After a failed open, the next attempt waits this long (a full disk stays full for
/// a while; trying per chunk would only count the same fault hundreds of times).
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// How often the active file's name is checked against the open file: a file deleted
/// or moved away (by hand, or by a tool that rotates logs) is written to in vain until
/// then. A `stat` a second costs nothing next to the lines.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// `<dir>/vigil.log`, rotated by time and size.
#[derive(Debug)]
pub struct RotatingFile {
    config: FileConfig,
    path: PathBuf,
    file: Option<File>,
    size: u64,
    /// The period of the lines in the active file (`None`: nothing written yet).
    period: Option<u64>,
    failed_open: Option<Instant>,
    /// When [`Self::check_path`] last ran (the writer's clock, as rotation's).
    checked: SystemTime,
    compressor: Compressor,
    /// The directory's lock, held for as long as this writes it.
    lock: File,
}

impl RotatingFile {
    /// Creates the directory if needed and opens (appends to) `vigil.log`. Lines already
    /// in it from an earlier run stay; if they belong to an earlier period the file is
    /// rotated before the first new line.
    pub fn open(config: FileConfig) -> std::io::Result<Self> {
        if config.dir.exists() && !config.dir.is_dir() {
            return Err(std::io::Error::other("it is not a directory"));
        }
        std::fs::create_dir_all(&config.dir)?;
        let lock = lock(&config.dir)?;
        let path = config.dir.join(ACTIVE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        // A newline after a cut-off line may not fit (the crash that cut it came with a
        // full disk): counted, and the reopen tries again, as for any write.
        let ended = end_line(&file);
        if let Err(e) = &ended {
            FileFaults::global().fault(Operation::Open, &path, e);
        }
        let meta = file.metadata()?;
        let size = meta.len();
        let period = (size > 0).then(|| {
            config
                .rotation
                .period(meta.modified().unwrap_or_else(|_| SystemTime::now()))
        });
        let compressor = Compressor::start(config.dir.clone(), config.keep)?;
        Ok(Self {
            config,
            path,
            failed_open: ended.is_err().then(Instant::now),
            file: ended.is_ok().then_some(file),
            size,
            period,
            checked: SystemTime::now(),
            compressor,
            lock,
        })
    }

    /// Appends whole lines as of `now` (the clock is a parameter for tests).
    pub fn write_lines_at(&mut self, mut lines: &[u8], now: SystemTime) {
        let period = self.config.rotation.period(now);
        // A clock set back checks at once: a stat is cheap, a missed deletion is not.
        let recent = now
            .duration_since(self.checked)
            .is_ok_and(|d| d < CHECK_EVERY);
        if !recent {
            self.check_path(now);
        }
        if self.period.is_some_and(|p| p != period) && self.size > 0 {
            self.rotate(now);
        }
        while !lines.is_empty() {
            if !self.ensure_open() {
                return;
            }
            let take = match self.config.max_bytes {
                Some(max) if self.size + lines.len() as u64 > max => {
                    let room = max.saturating_sub(self.size) as usize;
                    match lines[..room.min(lines.len())]
                        .iter()
                        .rposition(|&b| b == b'\n')
                    {
                        Some(last) => last + 1,
                        // Nothing fits: a new file, unless this one is empty (then the
                        // first line goes in whole, however long).
                        None if self.size > 0 => 0,
                        None => lines
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(lines.len(), |i| i + 1),
                    }
                }
                _ => lines.len(),
            };
            if take > 0 {
                self.append(&lines[..take], period);
                lines = &lines[take..];
            }
            if !lines.is_empty() {
                self.rotate(now);
            }
        }
    }

    /// Waits until rotated files so far are compressed and old ones deleted (tests,
    /// and shutdown).
    pub fn settle(&self) {
        self.compressor.settle();
    }

    fn append(&mut self, chunk: &[u8], period: u64) {
        let Some(file) = &mut self.file else {
            return;
        };
        match file.write_all(chunk) {
            Ok(()) => {
                self.size += chunk.len() as u64;
                self.period = Some(period);
            }
            Err(e) => {
                FileFaults::global().fault(Operation::Write, &self.path, &e);
                // Part of the chunk may have gone in (a disk that filled up mid-way),
                // ending the file in half a line that the next line would be glued
                // to: cut it off (shortening frees space, so this works on a full
                // disk). If even that fails, the reopen starts a new line.
                // Only ever shorter: `size` may be a second stale (a tool that
                // emptied the file in place), and a longer file would be NUL-filled.
                let len = file.metadata().map_or(self.size, |m| m.len());
                if len > self.size && file.set_len(self.size).is_err() {
                    self.size = len;
                }
                self.file = None;
                self.failed_open = Some(Instant::now());
            }
        }
    }

    /// Whether the active file's name still leads to the open file; if not (deleted,
    /// or moved away, or its directory removed), the next line opens a new one there.
    /// Lines written to a deleted file are lost: counted as a failed write. A file
    /// moved away keeps its lines and is simply left behind.
    fn check_path(&mut self, now: SystemTime) {
        self.checked = now;
        let Some(file) = &self.file else {
            return;
        };
        let Ok(open) = file.metadata() else {
            return;
        };
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|named| (named.dev(), named.ino()) == (open.dev(), open.ino()));
        if same {
            // Another tool may have truncated it (copytruncate): rotation goes by
            // what the file holds.
            self.size = open.len();
            return;
        }
        if open.nlink() == 0 {
            FileFaults::global().fault(
                Operation::Write,
                &self.path,
                &std::io::Error::other("the log file was deleted; its last lines are lost"),
            );
        }
        self.file = None;
        self.failed_open = None;
        self.size = 0;
        self.period = None;
    }

    /// Renames the active file to its rotated name, hands it to the compressor and
    /// starts a new one.
    fn rotate(&mut self, now: SystemTime) {
        if let Some(file) = self.file.take() {
            let _ = file.sync_data();
        }
        let rotated = rotated_path(&self.config.dir, now);
        match std::fs::rename(&self.path, &rotated) {
            Ok(()) => self.compressor.compress(rotated),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => FileFaults::global().fault(Operation::Rotate, &self.path, &e),
        }
        self.size = 0;
        self.period = None;
        self.failed_open = None;
        self.ensure_open();
    }

    /// Makes sure the lock held is the directory's: one removed with its directory
    /// (`rm -rf` of the log dir) is taken again where it was, or another process
    /// could start writing the directory made again.
    fn keep_lock(&mut self) -> std::io::Result<()> {
        let held = self.lock.metadata()?;
        let named = std::fs::metadata(self.config.dir.join(LOCK));
        if named.is_ok_and(|n| (n.dev(), n.ino()) == (held.dev(), held.ino())) {
            return Ok(());
        }
        self.lock = lock(&self.config.dir)?;
        Ok(())
    }

    /// Whether a file is open, opening one if the last failure is old enough.
    fn ensure_open(&mut self) -> bool {
        if self.file.is_some() {
            return true;
        }
        if self.failed_open.is_some_and(|t| t.elapsed() < REOPEN_AFTER) {
            return false;
        }
        let opened = std::fs::create_dir_all(&self.config.dir)
            .and_then(|()| self.keep_lock())
            .and_then(|()| {
                // Read as well: `end_line` looks at the last byte.
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&self.path)
            });
        match opened.and_then(|file| end_line(&file).map(|()| file)) {
            Ok(file) => {
                self.size = file.metadata().map_or(0, |m| m.len());
                self.file = Some(file);
                self.failed_open = None;
                true
            }
            Err(e) => {
                FileFaults::global().fault(Operation::Open, &self.path, &e);
                self.failed_open = Some(Instant::now());
                false
            }
        }
    }
}

/// Takes the directory's lock, or says which directory another process writes.
fn lock(dir: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::other(
            "another process writes its logs there: give each process a --log-dir of its own",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Ends a file whose last line was cut off (a crash, or a write that failed and could
/// not be taken back) with a newline, so the next line starts on a line of its own.
fn end_line(file: &File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        (&*file).write_all(b"\n")?;
    }
    Ok(())
}

/// What the logger's writer thread uses. Never fails: a fault is counted and the lines
/// are lost, but stdout and the service go on.
impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_lines_at(buf, SystemTime::now());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
