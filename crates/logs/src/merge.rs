//! Merges the inputs into one stream in time order: inputs sorted by their first
//! timestamp, then a k-way merge on `timestamp`; equal times keep input order (the
//! sorted input order, then line order).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use time::OffsetDateTime;

use crate::line::LogLine;
use crate::source::Source;

/// The k-way merge. Each input is read lazily: only one line per input is held.
pub struct Merger {
    sources: Vec<Source>,
    /// The next line of each input, by its position in `sources`.
    heads: Vec<Option<LogLine>>,
    /// (time, input position, sequence) of each held line, earliest first.
    heap: BinaryHeap<Reverse<(OffsetDateTime, usize, u64)>>,
    seq: u64,
}

impl Merger {
    pub fn new(sources: Vec<Source>) -> Merger {
        let mut firsts: Vec<(Option<LogLine>, Source)> = sources
            .into_iter()
            .map(|mut s| (s.next_line(), s))
            .collect();
        // Stable: inputs with the same first time (or none) keep argument order.
        firsts.sort_by_key(|(l, _)| (l.is_none(), l.as_ref().map(|l| l.timestamp)));
        let (heads, sources): (Vec<_>, Vec<_>) = firsts.into_iter().unzip();
        let mut merger = Merger {
            sources,
            heads,
            heap: BinaryHeap::new(),
            seq: 0,
        };
        for i in 0..merger.heads.len() {
            merger.push(i);
        }
        merger
    }

    fn push(&mut self, i: usize) {
        if let Some(line) = &self.heads[i] {
            self.heap.push(Reverse((line.timestamp, i, self.seq)));
            self.seq += 1;
        }
    }

    /// The inputs, in merge order, for their counters after the merge.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn into_sources(self) -> Vec<Source> {
        self.sources
    }
}

impl Iterator for Merger {
    type Item = LogLine;

    fn next(&mut self) -> Option<LogLine> {
        let Reverse((_, i, _)) = self.heap.pop()?;
        let line = self.heads[i].take();
        self.heads[i] = self.sources[i].next_line();
        self.push(i);
        line
    }
}
