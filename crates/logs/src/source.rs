//! Where lines come from: file arguments (globs expanded here too), plain or gzip
//! files (detected by their magic bytes, not their name) and stdin, read line by line
//! with a cap on line length.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::LogsError;
use crate::line::{LogLine, MAX_LINE_BYTES, Malformed, Skipped};

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

/// An open input yielding parsed lines and counting the malformed ones.
pub struct Source {
    /// The file, or `None` for stdin.
    pub path: Option<PathBuf>,
    /// True when the file is gzip-compressed.
    pub gzip: bool,
    reader: Box<dyn BufRead>,
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
            Input::Stdin => Self::from_reader(None, Box::new(io::stdin().lock())),
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
    pub fn from_reader(path: Option<PathBuf>, read: Box<dyn Read>) -> Result<Source, LogsError> {
        let mut plain = BufReader::with_capacity(64 * 1024, read);
        let gzip = is_gzip(&mut plain).map_err(|source| LogsError::Open {
            path: path.clone().unwrap_or_else(|| PathBuf::from("-")),
            source,
        })?;
        let reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                64 * 1024,
                MultiGzDecoder::new(plain),
            ))
        } else {
            Box::new(plain)
        };
        Ok(Source {
            path,
            gzip,
            reader,
            consumed: 0,
            read: 0,
            skipped: Skipped::default(),
            error: None,
            done: false,
        })
    }

    /// The next raw line without its line ending, or `Err(TooLong)` for a line over the
    /// cap (whose bytes are skipped, never held whole). `None` at the end.
    fn next_raw(&mut self) -> Option<Result<Vec<u8>, Malformed>> {
        if self.done {
            return None;
        }
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    self.done = true;
                    break;
                }
            };
            if buf.is_empty() {
                self.done = true;
                break;
            }
            let (chunk, found) = match memchr(buf) {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if !too_long {
                if line.len() + chunk.len() > MAX_LINE_BYTES + 1 {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            let used = found.unwrap_or(buf.len());
            self.reader.consume(used);
            self.consumed += used as u64;
            if found.is_some() {
                break;
            }
        }
        if too_long {
            return Some(Err(Malformed::TooLong));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() && self.done {
            return None;
        }
        Some(Ok(line))
    }

    /// The next well-formed line; malformed ones are counted and passed over.
    pub fn next_line(&mut self) -> Option<LogLine> {
        loop {
            let raw = self.next_raw()?;
            let parsed = raw.and_then(|bytes| {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    Ok(None)
                } else {
                    LogLine::parse(&bytes).map(Some)
                }
            });
            match parsed {
                Ok(None) => continue,
                Ok(Some(line)) => {
                    self.read += 1;
                    return Some(line);
                }
                Err(kind) => {
                    self.read += 1;
                    self.skipped.add(kind);
                }
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

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(bytes: &[u8]) -> Source {
        Source::from_reader(None, Box::new(io::Cursor::new(bytes.to_vec()))).unwrap()
    }

    #[test]
    fn long_lines_are_skipped_and_reading_goes_on() {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.extend_from_slice(b"\n{\"timestamp\":\"2026-12-01T21:00:00Z\"}\r\n");
        let mut s = source(&data);
        let line = s.next_line().unwrap();
        assert_eq!(line.raw, "{\"timestamp\":\"2026-12-01T21:00:00Z\"}");
        assert!(s.next_line().is_none());
        assert_eq!(s.skipped.get(Malformed::TooLong), 1);
        assert_eq!(s.read, 2);
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
