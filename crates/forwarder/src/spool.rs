//! The disk side of the pipeline: segment files under the spool directory, one per
//! batch, each holding exactly the batch's binary body (`VGL1` and the framed records,
//! [`vigil_records::packed`]). A handler writes its record to the filling batch's
//! segment before the prediction is answered, and a segment is deleted only once its
//! batch is stored. So whatever happens next (a crash, SIGKILL, a full queue, a
//! collector or database that is down) an answered prediction's record is on disk
//! until it is stored, and a restart delivers what it finds; the prediction id makes
//! a second delivery of the same record a no-op. The kernel keeps what was written
//! when the process dies; a power loss can still lose the last moments (there is no
//! fsync per record: it would cost more than the prediction).
//!
//! Batches that left memory without being delivered are "parked": they wait here
//! only, are replayed oldest first, and are bounded: beyond `max_spool_records` the
//! oldest segments are deleted and counted as dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use vigil_records::{WireRecord, packed};

use crate::batch::Batch;
use crate::metrics::ForwarderMetrics;

/// A segment file's extension.
const SEGMENT: &str = "vgl";
/// Segments of earlier versions: JSON lines, a record per line. Read once at start and
/// rewritten as segments.
const LEGACY: &str = "jsonl";

/// Names and creates segment files; shared by the handlers (a new segment at each
/// seal) and the worker.
#[derive(Debug)]
pub(crate) struct Segments {
    dir: PathBuf,
    next: AtomicU64,
}

impl Segments {
    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{SEGMENT}"))
    }

    /// A new segment, its header written; `None` (logged) when the disk refuses.
    pub(crate) fn create(&self) -> (u64, Option<File>) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let created = File::create(self.path(seq)).and_then(|mut f| {
            f.write_all(packed::MAGIC)?;
            Ok(f)
        });
        match created {
            Ok(file) => (seq, Some(file)),
            Err(e) => {
                tracing::error!(target: "vigil::forwarder", segment = seq, dir = %self.dir.display(), error = %e, "spool_write_failed");
                (seq, None)
            }
        }
    }

    /// Deletes a segment; one that is already gone is fine.
    pub(crate) fn delete(&self, seq: u64) {
        let _ = std::fs::remove_file(self.path(seq));
    }

    /// Whether segment `seq` holds no record: empty, or the header alone.
    fn holds_nothing(&self, seq: u64) -> bool {
        std::fs::metadata(self.path(seq)).is_ok_and(|m| m.len() <= packed::MAGIC.len() as u64)
    }

    /// Moves segment `seq` out of the replay (`<seq>.unreadable`), kept for a person
    /// to look at rather than deleted unread.
    fn set_aside(&self, seq: u64) {
        let path = self.path(seq);
        let aside = path.with_extension("unreadable");
        tracing::error!(target: "vigil::forwarder", segment = seq, kept = %aside.display(), "spool_segment_unreadable");
        let _ = std::fs::rename(&path, &aside);
    }

    /// Replaces segment `seq` with `batch`'s records, through a temporary file and a
    /// rename so a crash never leaves half of it.
    pub(crate) fn rewrite(&self, seq: u64, batch: &Batch) -> std::io::Result<()> {
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let written =
            std::fs::write(&tmp, batch.body()).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            // Half a file on a full disk takes the space the next try needs.
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Reads segment `seq` back: its intact records (a crash can cut the last one
    /// short; what follows damaged framing cannot be located and is left out).
    fn read(&self, seq: u64) -> std::io::Result<Batch> {
        let data = std::fs::read(self.path(seq))?;
        let Some(rest) = data.strip_prefix(packed::MAGIC.as_slice()) else {
            return Ok(Batch::from_segment(seq, packed::MAGIC.to_vec(), 0));
        };
        let (mut len, mut end) = (0, packed::MAGIC.len());
        for record in packed::records(rest) {
            let Ok(record) = record else { break };
            len += 1;
            end += 4 + record.len();
        }
        let mut data = data;
        data.truncate(end);
        Ok(Batch::from_segment(seq, data, len))
    }
}

/// The parked segments (waiting on disk only), oldest first, and their bound.
#[derive(Debug)]
pub(crate) struct Spool {
    segments: std::sync::Arc<Segments>,
    /// Parked segments and how many records each holds.
    parked: BTreeMap<u64, u64>,
    records: u64,
    max: u64,
    metrics: ForwarderMetrics,
}

impl Spool {
    /// Opens the spool directory: every segment found is parked (it was never
    /// confirmed stored), segments of earlier versions are converted, and half-written
    /// rewrites are removed.
    pub(crate) fn open(
        dir: &Path,
        max: u64,
        metrics: ForwarderMetrics,
    ) -> std::io::Result<(Self, std::sync::Arc<Segments>)> {
        std::fs::create_dir_all(dir)?;
        let mut found = std::collections::BTreeSet::new();
        let mut legacy = Vec::new();
        for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
            let path = entry.path();
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            match (path.extension().and_then(|e| e.to_str()), seq) {
                (Some(SEGMENT), Some(seq)) => {
                    found.insert(seq);
                }
                (Some(LEGACY), Some(seq)) => legacy.push((seq, path)),
                (Some("tmp"), Some(_)) => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        let next = found
            .iter()
            .chain(legacy.iter().map(|(seq, _)| seq))
            .max()
            .map_or(0, |m| m.saturating_add(1));
        let segments = std::sync::Arc::new(Segments {
            dir: dir.to_owned(),
            next: AtomicU64::new(next),
        });
        let mut spool = Self {
            segments: segments.clone(),
            parked: BTreeMap::new(),
            records: 0,
            max: max.max(1),
            metrics,
        };
        legacy.sort();
        for (_, path) in legacy {
            spool.convert_legacy(&path)?;
        }
        for seq in found {
            match segments.read(seq) {
                Ok(batch) if !batch.is_empty() => spool.park(seq, batch.len() as u64),
                // A batch that got no record before the process stopped (the open
                // segment at a shutdown, or a crash before the header was written).
                _ if segments.holds_nothing(seq) => segments.delete(seq),
                // Unreadable, or not this format: kept aside, never deleted unread.
                _ => segments.set_aside(seq),
            }
        }
        if spool.records > 0 {
            tracing::info!(target: "vigil::forwarder", records = spool.records, dir = %dir.display(), "spool_found");
        }
        Ok((spool, segments))
    }

    /// Rewrites a JSON-lines segment of an earlier version as a segment; lines that
    /// are not a record (damage) are left out.
    fn convert_legacy(&mut self, path: &Path) -> std::io::Result<()> {
        let text = std::fs::read(path)?;
        let mut data = packed::MAGIC.to_vec();
        let mut len = 0;
        for line in text.split(|b| *b == b'\n') {
            if let Ok(record) = serde_json::from_slice::<WireRecord>(line) {
                packed::write(&mut data, &(&record).into());
                len += 1;
            }
        }
        let seq = self.segments.next.fetch_add(1, Ordering::Relaxed);
        if len > 0 {
            self.segments
                .rewrite(seq, &Batch::from_segment(seq, data, len))?;
            self.park(seq, len as u64);
        }
        std::fs::remove_file(path)
    }

    /// Records waiting here.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Segment `seq` (on disk, `n` records) now waits here only. Beyond the bound,
    /// the oldest segments go, counted.
    pub(crate) fn park(&mut self, seq: u64, n: u64) {
        if self.parked.insert(seq, n).is_none() {
            self.records += n;
            self.metrics.spool.inc_by(n as i64);
        }
        self.bound();
    }

    /// Takes over a batch a handler parked when the queue was full. The handler
    /// counted it in `prediction_log_spool_records` at once (the worker may be busy
    /// with a post for seconds); here it joins the replay and the bound.
    pub(crate) fn adopt(&mut self, seq: u64, n: u64) {
        if self.parked.insert(seq, n).is_none() {
            self.records += n;
        } else {
            self.metrics.spool.dec_by(n as i64);
        }
        self.bound();
    }

    /// Beyond the bound, the oldest segments go, counted.
    fn bound(&mut self) {
        while self.records > self.max && self.parked.len() > 1 {
            let Some((oldest, n)) = self.parked.pop_first() else {
                break;
            };
            self.segments.delete(oldest);
            self.records -= n;
            self.metrics.spool.dec_by(n as i64);
            self.metrics.dropped.inc_by(n);
            tracing::warn!(target: "vigil::forwarder", records = n, "spool_full_dropped_oldest");
        }
    }

    /// The oldest parked segment, read back. One that cannot be read is given up
    /// (counted as dropped) rather than tried forever.
    pub(crate) fn oldest(&mut self) -> Option<Batch> {
        loop {
            let (&seq, &n) = self.parked.first_key_value()?;
            match self.segments.read(seq) {
                Ok(batch) => return Some(batch),
                Err(e) => {
                    tracing::error!(target: "vigil::forwarder", segment = seq, records = n, error = %e, "spool_read_failed");
                    self.metrics.dropped.inc_by(n);
                    self.segments.set_aside(seq);
                    self.forget(seq);
                }
            }
        }
    }

    /// Segment `seq` is done with (stored, or refused): it leaves the disk.
    pub(crate) fn delete(&mut self, seq: u64) {
        self.segments.delete(seq);
        self.forget(seq);
    }

    /// A parked segment now holds `batch` (its refused records taken out).
    pub(crate) fn replace(&mut self, batch: &Batch) -> std::io::Result<()> {
        self.segments.rewrite(batch.seq, batch)?;
        if let Some(n) = self.parked.get_mut(&batch.seq) {
            let kept = batch.len() as u64;
            self.records = self.records - *n + kept;
            self.metrics.spool.dec_by(*n as i64 - kept as i64);
            *n = kept;
        }
        Ok(())
    }

    fn forget(&mut self, seq: u64) {
        if let Some(n) = self.parked.remove(&seq) {
            self.records -= n;
            self.metrics.spool.dec_by(n as i64);
        }
    }

    pub(crate) fn segments(&self) -> &Segments {
        &self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch_of, dir, ids, metrics};

    #[test]
    fn a_full_spool_drops_the_oldest_batches_and_counts_them() {
        let dir = dir();
        let m = metrics();
        let (mut spool, segments) = Spool::open(&dir, 5, m.clone()).unwrap();
        for (seq, names) in [(0, ["a1", "a2"]), (1, ["b1", "b2"])] {
            segments.rewrite(seq, &batch_of(seq, &names)).unwrap();
            spool.park(seq, 2);
        }
        assert_eq!(spool.records(), 4);
        // A third batch overflows the bound of 5: the oldest batch goes, counted.
        segments.rewrite(2, &batch_of(2, &["c1", "c2"])).unwrap();
        spool.park(2, 2);
        assert_eq!(spool.records(), 4);
        assert_eq!(m.dropped.get(), 2);
        assert_eq!(m.spool.get(), 4);
        let oldest = spool.oldest().unwrap();
        assert_eq!(ids(&oldest), ["b1", "b2"]);
        spool.delete(oldest.seq);
        assert_eq!(spool.records(), 2);
        // A new process finds what is left, in order, and numbers new segments after it.
        let (mut reopened, segments) = Spool::open(&dir, 5, m).unwrap();
        assert_eq!(reopened.records(), 2);
        assert_eq!(ids(&reopened.oldest().unwrap()), ["c1", "c2"]);
        assert_eq!(segments.create().0, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_segment_cut_short_by_a_crash_replays_its_whole_records_and_rewrites_never_half() {
        let dir = dir();
        let whole = batch_of(4, &["p1", "p2", "p3"]);
        let body = whole.body();
        // The process died in the middle of writing the third record.
        std::fs::write(dir.join(format!("{:020}.vgl", 4)), &body[..body.len() - 7]).unwrap();
        // A crash between write and rename leaves only a .tmp file behind; a segment
        // that got no record before the process stopped holds only the header.
        std::fs::write(dir.join(format!("{:020}.tmp", 5)), &body[..]).unwrap();
        std::fs::write(dir.join(format!("{:020}.vgl", 6)), packed::MAGIC).unwrap();
        // Not this format (say, a later version's): set aside, never deleted unread.
        std::fs::write(dir.join(format!("{:020}.vgl", 8)), b"VGL9 something").unwrap();
        // A hostile name does not overflow the numbering.
        std::fs::write(dir.join(format!("{}.vgl", u64::MAX)), packed::MAGIC).unwrap();
        let (mut spool, segments) = Spool::open(&dir, 10, metrics()).unwrap();
        assert_eq!(spool.records(), 2);
        assert_eq!(ids(&spool.oldest().unwrap()), ["p1", "p2"]);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [format!("{:020}.vgl", 4), format!("{:020}.unreadable", 8)]
        );
        assert_eq!(segments.create().0, u64::MAX);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A rewrite that fails leaves no half-written `.tmp` behind: on a full disk it took
    /// the space the next try needed, every ~100 ms a batch held in memory.
    #[test]
    fn a_failed_rewrite_leaves_no_temporary_file() {
        let dir = dir();
        let (_spool, segments) = Spool::open(&dir, 10, metrics()).unwrap();
        // The segment's name is taken by a directory: the final rename fails.
        std::fs::create_dir_all(dir.join(format!("{:020}.vgl", 7)).join("x")).unwrap();
        assert!(segments.rewrite(7, &batch_of(7, &["p1"])).is_err());
        assert!(!dir.join(format!("{:020}.tmp", 7)).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn segments_of_the_json_lines_spool_are_converted() {
        let dir = dir();
        let mut lines = Vec::new();
        for id in ["j1", "j2"] {
            let wire = crate::testing::record(id);
            lines.extend(serde_json::to_vec(&vigil_records::RecordRef::from(&wire)).unwrap());
            lines.push(b'\n');
        }
        lines.extend_from_slice(b"{\"prediction_id\":\n");
        std::fs::write(dir.join(format!("{:020}.jsonl", 9)), &lines).unwrap();
        let (mut spool, segments) = Spool::open(&dir, 10, metrics()).unwrap();
        assert_eq!(spool.records(), 2);
        assert_eq!(ids(&spool.oldest().unwrap()), ["j1", "j2"]);
        assert!(!dir.join(format!("{:020}.jsonl", 9)).exists());
        assert!(segments.create().0 > 9);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
