//! Why a body or a record was refused.

use serde::Serialize;

/// What is wrong with one record of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordError {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    pub reason: String,
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// JSON of the wrong overall shape, or a binary batch whose framing is damaged.
    #[error("{0}")]
    Shape(String),
    /// A binary batch that does not start with this version's header.
    #[error("{0}")]
    Version(String),
    /// Some records are invalid.
    #[error("{} invalid records", .0.len())]
    Records(Vec<RecordError>),
}
