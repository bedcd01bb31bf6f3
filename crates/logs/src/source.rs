//! Where lines come from: file arguments (globs expanded here too), plain or gzip
//! files (detected by their magic bytes, not their name) and stdin, read line by line
//! with a cap on line length.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use flate2::read::MultiGzDecoder;

use crate::error::LogsError;
use crate::line::LogLine;
use crate::malformed::{Malformed, Skipped};
use crate::split::{Block, Splitter};

/// One input named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

/// Expands the file arguments: no argument or `-` is stdin; an argument with a glob
/// character (`*`, `?`, `[`) is expanded (sorted by name) and must match a file; any
/// other argument is taken as a path as it is.
pub fn expand(args: &[String]) -> Result<Vec<Input>, LogsError> {
    if args.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    let mut inputs = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(Input::Stdin);
        } else if arg.contains(['*', '?', '[']) && !Path::new(arg).exists() {
            let paths = glob::glob(arg).map_err(|e| LogsError::BadGlob {
                pattern: arg.clone(),
                reason: e.msg.to_owned(),
            })?;
            let mut matched: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(LogsError::NoMatch {
                    pattern: arg.clone(),
                });
            }
            matched.sort();
            inputs.extend(matched.into_iter().map(Input::File));
        } else {
            inputs.push(Input::File(PathBuf::from(arg)));
        }
    }
    Ok(inputs)
}

/// True when the first bytes are gzip's magic number.
fn is_gzip(reader: &mut dyn BufRead) -> io::Result<bool> {
    let head = reader.fill_buf()?;
    Ok(head.starts_with(&[0x1f, 0x8b]))
}

/// How many bytes one read takes, and so the most a block holds beyond one line.
const READ_BYTES: usize = 256 * 1024;

/// Blocks a file input reads ahead and parses on the thread pool while the lines
/// before them are merged, filtered and printed. Stdin reads one block at a time, so a
/// live pipe's lines come out as soon as they are read.
const FILE_READ_AHEAD: usize = 4;

/// The lines of a parsed block, in order.
type Parsed = Vec<Result<LogLine, Malformed>>;

/// An open input yielding parsed lines and counting the malformed ones.
///
/// Why blocks on a thread pool: parsing is nearly all of a filter run's time. On this
/// 2-core VM, 1 GB took 2.0–2.2 s on the pool against 2.5–2.8 s parsed in line on one
/// thread (docs/BENCHMARKS.md).
pub struct Source {
    /// The file, or `None` for stdin.
    pub path: Option<PathBuf>,
    /// True when the file is gzip-compressed.
    pub gzip: bool,
    reader: Box<dyn Read + Send>,
    splitter: Splitter,
    buf: Vec<u8>,
    read_ahead: usize,
    /// Blocks being parsed, oldest first.
    in_flight: VecDeque<mpsc::Receiver<Parsed>>,
    /// The lines of the current block not yet taken.
    ready: std::vec::IntoIter<Result<LogLine, Malformed>>,
    /// Bytes of the (decompressed) stream consumed so far: the offset `--follow`
    /// continues from for a plain file.
    pub consumed: u64,
    /// Lines read, including skipped ones (empty lines are not counted).
    pub read: u64,
    pub skipped: Skipped,
    /// A read error that ended this input early (e.g. a truncated gzip file).
    pub error: Option<io::Error>,
    done: bool,
}

impl Source {
    pub fn open(input: &Input) -> Result<Source, LogsError> {
        match input {
            Input::Stdin => {
                let mut s = Self::from_reader(None, Box::new(io::stdin()))?;
                s.read_ahead = 1;
                Ok(s)
            }
            Input::File(path) => {
                let file = File::open(path).map_err(|source| LogsError::Open {
                    path: path.clone(),
                    source,
                })?;
                Self::from_reader(Some(path.clone()), Box::new(file))
            }
        }
    }

    /// Wraps any reader (gzip detected from its first bytes).
    pub fn from_reader(
        path: Option<PathBuf>,
        read: Box<dyn Read + Send>,
    ) -> Result<Source, LogsError> {
        // Small: it holds the first bytes for the gzip check, then reads of a block
        // (or of the gzip decoder's own 32 KiB buffer) go past it. Every input is
        // opened, and checked, before the merge reads any.
        let mut plain = BufReader::with_capacity(8 * 1024, read);
        let gzip = is_gzip(&mut plain).map_err(|source| LogsError::Open {
            path: path.clone().unwrap_or_else(|| PathBuf::from("-")),
            source,
        })?;
        let reader: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(plain))
        } else {
            Box::new(plain)
        };
        Ok(Source {
            path,
            gzip,
            reader,
            splitter: Splitter::default(),
            buf: Vec::new(),
            read_ahead: FILE_READ_AHEAD,
            in_flight: VecDeque::new(),
            ready: Vec::new().into_iter(),
            consumed: 0,
            read: 0,
            skipped: Skipped::default(),
            error: None,
            done: false,
        })
    }

    /// Reads once; returns the lines that completes (all that is left at the end).
    ///
    /// The block buffer is allocated at the first read and freed, with the reader's
    /// own, at the end of the input: every input is open at once for the merge, and
    /// 6,000 small files took 2 GB when each kept its 320 KiB of buffers to the end.
    fn read_block(&mut self) -> Block {
        if self.buf.is_empty() {
            self.buf = vec![0; READ_BYTES];
        }
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(0) => {
                    self.finished();
                    return self.splitter.finish();
                }
                Ok(n) => {
                    self.consumed += n as u64;
                    return self.splitter.push(&self.buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.finished();
                    return self.splitter.finish();
                }
            }
        }
    }

    /// The end of the input: nothing more is read, so the buffers go.
    fn finished(&mut self) {
        self.done = true;
        self.buf = Vec::new();
        self.reader = Box::new(io::empty());
    }

    /// Keeps `read_ahead` blocks parsing, then takes the oldest one's lines. False at
    /// the end of the input.
    fn next_block(&mut self) -> bool {
        while self.in_flight.len() < self.read_ahead && !self.done {
            let block = self.read_block();
            if block.is_empty() {
                continue;
            }
            let (tx, rx) = mpsc::sync_channel(1);
            rayon::spawn(move || {
                // The receiver is gone only when the run ended early.
                let _ = tx.send(block.parse());
            });
            self.in_flight.push_back(rx);
        }
        let Some(rx) = self.in_flight.pop_front() else {
            return false;
        };
        // The sender always sends before it is dropped: `Block::parse` does not panic.
        self.ready = rx.recv().unwrap_or_default().into_iter();
        true
    }

    /// The next well-formed line; malformed ones are counted and passed over.
    pub fn next_line(&mut self) -> Option<LogLine> {
        loop {
            match self.ready.next() {
                Some(Ok(line)) => {
                    self.read += 1;
                    return Some(line);
                }
                Some(Err(kind)) => {
                    self.read += 1;
                    self.skipped.add(kind);
                }
                None if self.next_block() => {}
                None => return None,
            }
        }
    }

    /// A name for messages: the path, or `-` for stdin.
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(bytes: &[u8]) -> Source {
        Source::from_reader(None, Box::new(io::Cursor::new(bytes.to_vec()))).unwrap()
    }

    /// Every input is open at once for the merge: one read to the end holds no buffer.
    #[test]
    fn an_input_read_to_its_end_lets_its_buffers_go() {
        let mut s = source(b"{\"timestamp\":\"2026-12-01T21:00:00Z\"}\n");
        assert_eq!(
            s.buf.capacity(),
            0,
            "nothing is allocated before the first read"
        );
        assert!(s.next_line().is_some());
        assert!(s.next_line().is_none());
        assert_eq!(s.buf.capacity(), 0);
        let mut rest = Vec::new();
        assert_eq!(s.reader.read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn long_lines_are_skipped_and_reading_goes_on() {
        let mut data = vec![b'x'; crate::line::MAX_LINE_BYTES + 10];
        data.extend_from_slice(b"\n{\"timestamp\":\"2026-12-01T21:00:00Z\"}\r\n");
        let mut s = source(&data);
        let line = s.next_line().unwrap();
        assert_eq!(line.raw(), "{\"timestamp\":\"2026-12-01T21:00:00Z\"}");
        assert!(s.next_line().is_none());
        assert_eq!(s.skipped.get(Malformed::TooLong), 1);
        assert_eq!(s.read, 2);
    }

    #[test]
    fn blocks_parsed_in_parallel_come_back_in_order() {
        // About 12 blocks, with a malformed line every 1000.
        let mut data = Vec::new();
        for i in 0..40_000u32 {
            if i % 1000 == 999 {
                data.extend_from_slice(b"not json\n");
            } else {
                data.extend_from_slice(
                    format!("{{\"timestamp\":\"2026-12-01T21:00:00Z\",\"n\":{i}}}\n").as_bytes(),
                );
            }
        }
        let len = data.len() as u64;
        let mut s = source(&data);
        let mut seen = Vec::new();
        while let Some(line) = s.next_line() {
            seen.push(line.num_field("n").unwrap() as u32);
        }
        let expected: Vec<u32> = (0..40_000).filter(|i| i % 1000 != 999).collect();
        assert_eq!(seen, expected);
        assert_eq!(s.skipped.get(Malformed::NotJson), 40);
        assert_eq!(s.read, 40_000);
        assert_eq!(s.consumed, len);
    }

    #[test]
    fn gzip_is_found_by_magic_bytes() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"timestamp\":\"2026-12-01T21:00:00Z\"}\n")
            .unwrap();
        let mut s = source(&enc.finish().unwrap());
        assert!(s.gzip);
        assert!(s.next_line().is_some());
    }
}
