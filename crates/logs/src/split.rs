//! Cutting a stream of bytes into blocks of whole lines, with a cap on line length,
//! and parsing a block. Reading the files and following the current one both cut
//! here; a block is the unit the parser threads take.

use crate::line::{LinesBuilder, LogLine, MAX_LINE_BYTES};
use crate::malformed::Malformed;

/// Whole lines, each ended by a newline (but the last of an input, which may not be).
#[derive(Debug, Default)]
pub struct Block {
    /// Lines over the cap that came before `bytes`, whose bytes were dropped.
    pub overlong: u64,
    pub bytes: Vec<u8>,
}

impl Block {
    pub fn is_empty(&self) -> bool {
        self.overlong == 0 && self.bytes.is_empty()
    }

    /// Parses every line: over-long ones first, then the lines in order. Blank lines
    /// are passed over; a `\r` before the newline is dropped.
    pub fn parse(&self) -> Vec<Result<LogLine, Malformed>> {
        let mut lines = LinesBuilder::with_capacity(self.bytes.len());
        for _ in 0..self.overlong {
            lines.push_malformed(Malformed::TooLong);
        }
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', &self.bytes).chain(
            // The last line of an input may have no newline.
            (self.bytes.last() != Some(&b'\n') && !self.bytes.is_empty())
                .then_some(self.bytes.len()),
        );
        for end in ends {
            let mut line = &self.bytes[start..end];
            start = end + 1;
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines.push(line);
        }
        lines.finish()
    }
}

/// Holds the partial last line of what was read until its newline comes; a line
/// that grows past the cap is dropped as it comes in (never held whole) and counted.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: Vec<u8>,
    /// The pending line passed the cap: its bytes are dropped up to the next newline.
    overlong: bool,
}

impl Splitter {
    /// Takes the next bytes read; returns the lines they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Block {
        let mut block = Block::default();
        if self.overlong {
            match memchr::memchr(b'\n', bytes) {
                None => return block,
                Some(i) => {
                    self.overlong = false;
                    block.overlong = 1;
                    bytes = &bytes[i + 1..];
                }
            }
        }
        if let Some(i) = memchr::memrchr(b'\n', bytes) {
            block.bytes = std::mem::take(&mut self.pending);
            block.bytes.extend_from_slice(&bytes[..=i]);
            bytes = &bytes[i + 1..];
        }
        // What is left has no newline yet. The cap allows one byte for a `\r`.
        if self.pending.len() + bytes.len() > MAX_LINE_BYTES + 1 {
            self.pending = Vec::new();
            self.overlong = true;
        } else {
            self.pending.extend_from_slice(bytes);
        }
        block
    }

    /// True while a line has begun but not ended.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty() || self.overlong
    }

    /// Ends the input (or the file, when it was rotated away): a last line without a
    /// newline is complete.
    pub fn finish(&mut self) -> Block {
        Block {
            overlong: u64::from(std::mem::take(&mut self.overlong)),
            bytes: std::mem::take(&mut self.pending),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"timestamp":"2026-12-01T21:00:00Z"}"#;

    fn parsed(block: &Block) -> Vec<Result<String, Malformed>> {
        block
            .parse()
            .into_iter()
            .map(|l| l.map(|l| l.raw().to_owned()))
            .collect()
    }

    #[test]
    fn lines_cut_anywhere_come_out_whole() {
        let mut text = Vec::new();
        for _ in 0..3 {
            text.extend_from_slice(LINE);
            text.extend_from_slice(b"\r\n\n");
        }
        text.extend_from_slice(LINE);
        for cut in 0..text.len() {
            let mut s = Splitter::default();
            let mut lines = parsed(&s.push(&text[..cut]));
            lines.extend(parsed(&s.push(&text[cut..])));
            lines.extend(parsed(&s.finish()));
            assert_eq!(lines.len(), 4, "cut at {cut}");
            assert!(
                lines
                    .iter()
                    .all(|l| l.as_deref() == Ok(std::str::from_utf8(LINE).unwrap()))
            );
        }
    }

    #[test]
    fn an_overlong_line_is_dropped_as_it_comes_and_counted_once() {
        let mut s = Splitter::default();
        let chunk = vec![b'x'; MAX_LINE_BYTES / 2];
        assert!(s.push(&chunk).is_empty());
        assert!(s.push(&chunk).is_empty());
        assert!(s.push(&chunk).is_empty());
        assert!(s.pending.is_empty(), "the long line is not held");
        let mut rest = b"xx\n".to_vec();
        rest.extend_from_slice(LINE);
        rest.push(b'\n');
        let block = s.push(&rest);
        assert_eq!(
            parsed(&block),
            vec![
                Err(Malformed::TooLong),
                Ok(std::str::from_utf8(LINE).unwrap().to_owned())
            ]
        );
        assert!(!s.has_partial());
    }
}
