//! The active file and its rotation. Lines arrive in chunks of whole lines (the
//! logger's writer thread writes what accumulated since its last round); a chunk that
//! would pass the size limit is cut after its last line that fits, so every line lands
//! whole in exactly one file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::compress::Compressor;
use crate::config::FileConfig;
use crate::faults::{FileFaults, Operation};
use crate::naming::{ACTIVE, rotated_path};

/// After a failed open, the next attempt waits this long (a full disk stays full for
/// a while; trying per chunk would only count the same fault hundreds of times).
const REOPEN_AFTER: Duration = Duration::from_secs(1);

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
    compressor: Compressor,
}

impl RotatingFile {
    /// Creates the directory if needed and opens (appends to) `vigil.log`. Lines already
    /// in it from an earlier run stay; if they belong to an earlier period the file is
    /// rotated before the first new line.
    pub fn open(config: FileConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let path = config.dir.join(ACTIVE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
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
            file: Some(file),
            size,
            period,
            failed_open: None,
            compressor,
        })
    }

    /// Appends whole lines as of `now` (the clock is a parameter for tests).
    pub fn write_lines_at(&mut self, mut lines: &[u8], now: SystemTime) {
        let period = self.config.rotation.period(now);
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
                // Whatever part went in counts against the size; reopen next time.
                self.size = file.metadata().map_or(self.size, |m| m.len());
                self.file = None;
                self.failed_open = Some(Instant::now());
            }
        }
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

    /// Whether a file is open, opening one if the last failure is old enough.
    fn ensure_open(&mut self) -> bool {
        if self.file.is_some() {
            return true;
        }
        if self.failed_open.is_some_and(|t| t.elapsed() < REOPEN_AFTER) {
            return false;
        }
        let opened = std::fs::create_dir_all(&self.config.dir).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        });
        match opened {
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
