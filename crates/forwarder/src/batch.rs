//! A batch of packed records ([`vigil_records::packed`]): the one handlers fill
//! ([`Filling`]), journaled to its spool segment in appends of whatever records came
//! since the last one, and once full (or flushed) the [`Batch`] that is delivered. A
//! batch's bytes are the binary `POST /log` body as it stands, and its segment file
//! holds the same bytes.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use vigil_records::{RecordRef, packed};

/// Emptied buffers kept for reuse, so a batch does not allocate (and fault in) fresh
/// memory: a delivered batch's buffer is the next one to fill.
#[derive(Debug, Default)]
pub(crate) struct FreeList(pub(crate) Mutex<Vec<Vec<u8>>>);

/// Buffers kept; more would only hold memory.
const FREE_BUFFERS: usize = 3;

impl FreeList {
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    pub(crate) fn give(&self, mut buffer: Vec<u8>) {
        let mut free = self.0.lock();
        if free.len() < FREE_BUFFERS {
            buffer.clear();
            free.push(buffer);
        }
    }
}

/// The batch handlers append to, and its segment file.
#[derive(Debug)]
pub(crate) struct Filling {
    data: Vec<u8>,
    pub(crate) len: usize,
    pub(crate) seq: u64,
    /// The open segment file; `None` once a write to it failed.
    journal: Option<File>,
    /// Bytes of `data` the segment file holds (it starts with the header).
    written: usize,
    /// Every record written so far is in the segment file.
    durable: bool,
    /// When its first record came.
    pub(crate) since: Option<Instant>,
}

impl Filling {
    /// An empty batch in `buffer`'s allocation, with room for `records` records of
    /// typical size (about 200 bytes; a larger batch just grows), journaled to
    /// `journal` (a segment file that holds the header already).
    pub(crate) fn new(
        mut buffer: Vec<u8>,
        records: usize,
        seq: u64,
        journal: Option<File>,
    ) -> Self {
        buffer.clear();
        buffer.reserve(packed::MAGIC.len() + records * 200);
        buffer.extend_from_slice(packed::MAGIC);
        Self {
            written: buffer.len(),
            data: buffer,
            len: 0,
            seq,
            durable: journal.is_some(),
            journal,
            since: None,
        }
    }

    /// Appends `record` in memory; returns where it ends, for [`Filling::written`].
    /// It reaches the segment file with the next [`Filling::write`].
    pub(crate) fn push(&mut self, record: &RecordRef<'_>) -> usize {
        if self.len == 0 {
            self.since = Some(Instant::now());
        }
        packed::write(&mut self.data, record);
        self.len += 1;
        self.data.len()
    }

    /// Bytes the segment file holds (or would, had no write failed).
    pub(crate) fn written(&self) -> usize {
        self.written
    }

    /// Appends every record pushed since the last write to the segment file, in one
    /// `write(2)`. This is what lets an answered prediction survive the process being
    /// killed; it goes to the kernel's page cache (no fsync), a couple of microseconds
    /// however many records it carries, which is why handlers share it (see
    /// [`crate::Forwarder::persist`]).
    pub(crate) fn write(&mut self) {
        let pending = &self.data[self.written..];
        if pending.is_empty() {
            return;
        }
        if let Some(file) = &mut self.journal
            && let Err(e) = file.write_all(pending)
        {
            tracing::error!(target: "vigil::forwarder", segment = self.seq, error = %e, "spool_write_failed");
            self.journal = None;
            self.durable = false;
        }
        self.written = self.data.len();
    }

    /// The finished batch, its records all written to its segment file, now closed.
    pub(crate) fn seal(mut self, free: &Arc<FreeList>) -> Batch {
        self.write();
        Batch {
            bytes: Bytes::from_owner(Pooled {
                data: self.data,
                free: Some(free.clone()),
            }),
            len: self.len,
            seq: self.seq,
            durable: self.durable,
            since: self.since,
        }
    }
}

/// A sealed batch of packed records, on its way to storage. Cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct Batch {
    bytes: Bytes,
    len: usize,
    pub(crate) seq: u64,
    /// Its segment file holds every record of it.
    pub(crate) durable: bool,
    /// When its first record was queued (`None` when read back from the spool).
    pub(crate) since: Option<Instant>,
}

impl Batch {
    /// A batch read back from a segment file.
    pub(crate) fn from_segment(seq: u64, bytes: Vec<u8>, len: usize) -> Self {
        Self {
            bytes: bytes.into(),
            len,
            seq,
            durable: true,
            since: None,
        }
    }

    /// The batch as a binary `POST /log` body: `VGL1` and the framed records.
    pub fn body(&self) -> &Bytes {
        &self.bytes
    }

    /// The packed records, after the header.
    pub fn records(&self) -> &[u8] {
        &self.bytes[packed::MAGIC.len()..]
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The batch without the records at `refused` (indexes into it).
    pub(crate) fn without(&self, refused: &[usize]) -> Self {
        let refused: std::collections::HashSet<usize> = refused.iter().copied().collect();
        let mut data = packed::MAGIC.to_vec();
        let mut len = 0;
        for (i, record) in packed::records(self.records()).enumerate() {
            if let Ok(record) = record
                && !refused.contains(&i)
            {
                packed::write_framed(&mut data, record);
                len += 1;
            }
        }
        Self {
            bytes: data.into(),
            len,
            seq: self.seq,
            durable: false,
            since: self.since,
        }
    }
}

/// A batch's buffer, handed back to the free list when the last reference to the
/// batch's bytes goes (delivered, or spooled, and released by the HTTP client).
struct Pooled {
    data: Vec<u8>,
    free: Option<Arc<FreeList>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(free) = self.free.take() {
            free.give(std::mem::take(&mut self.data));
        }
    }
}
