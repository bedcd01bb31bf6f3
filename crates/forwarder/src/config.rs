//! The forwarder's settings.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of the forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Where every record is journaled before its prediction is answered, and where
    /// batches wait while they cannot be delivered.
    pub spool_dir: PathBuf,
    /// Records held in memory; beyond it the newest full batches leave memory and wait
    /// in the spool only (they are on disk already).
    pub queue_capacity: usize,
    /// Records per delivery.
    pub batch_size: usize,
    /// A partial batch goes out at least this often.
    pub flush_interval: Duration,
    /// The worker stores at idle priority while it keeps up; a record that waited
    /// this long raises it to a fair share of the CPU until it has caught up.
    pub catch_up_after: Duration,
    /// Tries per batch before it waits in the spool.
    pub attempts: u32,
    /// First retry delay; doubles per try up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Records the spool may hold; the oldest segments go (counted) beyond it.
    pub max_spool_records: u64,
}

impl ForwarderConfig {
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            queue_capacity: 100_000,
            // A delivery costs about 100 µs whatever its size (an HTTP request and its
            // wake-ups, or a database transaction); at 2,000 records that is 0.05 µs a
            // record, and a batch (~430 KB binary, ~710 KB as JSON) is still far below
            // the collector's limits.
            batch_size: 2_000,
            flush_interval: Duration::from_millis(200),
            catch_up_after: Duration::from_secs(1),
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_spool_records: 1_000_000,
        }
    }
}
