//! Batches held in memory because the spool could not take them (a full disk) and
//! they could not be delivered either: the worker tries them again with the replays.
//! Their count is shared, so a shutdown that gives up on the worker (its flush ran out
//! of time, or a second Ctrl-C) can say how many records it leaves behind.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::Batch;

#[derive(Debug, Default)]
pub(crate) struct Held {
    batches: VecDeque<Batch>,
    records: HeldRecords,
}

/// How many records are held in memory right now; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HeldRecords(Arc<AtomicU64>);

impl HeldRecords {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Held {
    pub(crate) fn count(&self) -> HeldRecords {
        self.records.clone()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Records held.
    pub(crate) fn len(&self) -> u64 {
        self.records.get()
    }

    /// A batch held after the others.
    pub(crate) fn push_back(&mut self, batch: Batch) {
        self.records
            .0
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.batches.push_back(batch);
    }

    /// A batch put back first in line (its try failed).
    pub(crate) fn push_front(&mut self, batch: Batch) {
        self.records
            .0
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.batches.push_front(batch);
    }

    /// The oldest batch held.
    pub(crate) fn pop_front(&mut self) -> Option<Batch> {
        let batch = self.batches.pop_front()?;
        self.records
            .0
            .fetch_sub(batch.len() as u64, Ordering::Relaxed);
        Some(batch)
    }
}
