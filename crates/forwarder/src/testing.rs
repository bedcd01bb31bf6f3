//! Helpers for the forwarder's unit tests.

use std::path::{Path, PathBuf};

use prometheus_client::registry::Registry;
use vigil_records::{RecordRef, Status, WireRecord, packed};

use crate::batch::Batch;
use crate::metrics::ForwarderMetrics;
use crate::queue::Queue;
use crate::spool::Spool;

pub(crate) fn record(id: &str) -> WireRecord {
    WireRecord {
        prediction_id: id.into(),
        model: "m".into(),
        model_version: "1".into(),
        timestamp: "2026-11-22T21:00:00Z".into(),
        label: Some("ok".into()),
        confidence: Some(0.9),
        is_defect: false,
        latency_ms: 1.0,
        request_id: "r".into(),
        trace_id: None,
        status: Status::Success,
        error_type: None,
        features: None,
        value: None,
    }
}

/// A batch (segment `seq`) of records with these ids.
pub(crate) fn batch_of(seq: u64, names: &[&str]) -> Batch {
    let mut data = packed::MAGIC.to_vec();
    for id in names {
        packed::write(&mut data, &RecordRef::from(&record(id)));
    }
    Batch::from_segment(seq, data, names.len())
}

/// The prediction ids in a batch, in order.
pub(crate) fn ids(batch: &Batch) -> Vec<String> {
    let mut features = Vec::new();
    packed::records(batch.records())
        .map(|r| {
            packed::read(r.unwrap(), &mut features)
                .unwrap()
                .prediction_id
                .to_owned()
        })
        .collect()
}

pub(crate) fn metrics() -> ForwarderMetrics {
    ForwarderMetrics::register(&mut Registry::default())
}

/// A fresh directory under the system's temporary one.
pub(crate) fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-spool-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A queue whose segments are in `dir` (its spool there holds up to 100 records).
pub(crate) fn queue_in(
    dir: &Path,
    capacity: usize,
    batch_size: usize,
    m: &ForwarderMetrics,
) -> Queue {
    let (_, segments) = Spool::open(dir, 100, m.clone()).unwrap();
    Queue::new(capacity, batch_size, segments, m.clone())
}
