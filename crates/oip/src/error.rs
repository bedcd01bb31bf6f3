//! Why a request body is refused: always the client's mistake (a 400), with a message
//! that says what to change.

/// A refused infer request. `kind` sorts it for metrics; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub kind: ErrorKind,
    pub message: String,
}

/// What kind of mistake a request made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The JSON header is not JSON.
    MalformedJson,
    /// The framing, shape or structure is wrong (sizes, counts, fields).
    InvalidBody,
    /// A datatype the model cannot take, or a value it cannot take exactly.
    InvalidType,
    /// An input of more elements than the server takes in one request.
    TooManyElements,
}

impl RequestError {
    pub(crate) fn body(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidBody,
            message: message.into(),
        }
    }

    pub(crate) fn datatype(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidType,
            message: message.into(),
        }
    }
}
