//! The seam between the forwarder and storage: a [`Delivery`] takes one batch and says
//! what became of it. [`HttpDelivery`] posts it to a collector (`vigil serve
//! --collector-url`); `vigil up` plugs in a delivery that hands the batch to the
//! collector in the same process, with no HTTP and no JSON. Retries, the spool,
//! pruning of refused records and the metrics are the worker's, the same on every path.

mod http;
mod json;

use std::future::Future;

pub use http::HttpDelivery;

use crate::Batch;

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Stored (records already stored count as stored: the prediction id is the
    /// idempotency key).
    Stored,
    /// Refused as invalid: sending it again cannot help. `records` are the indexes
    /// of the refused records when the refusal named every one of them; the worker
    /// then sends the others again.
    Rejected { why: String, records: Vec<usize> },
    /// Not stored this time (unreachable, overloaded, database down): try again later.
    Failed(String),
}

/// Delivers batches to storage.
pub trait Delivery: Send + 'static {
    /// Delivers one batch (its records in the binary encoding, `batch.body()`).
    fn deliver(&mut self, batch: &Batch) -> impl Future<Output = Delivered> + Send;
}
