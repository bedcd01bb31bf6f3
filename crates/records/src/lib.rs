//! The prediction record, the one contract every part of vigil that makes, carries or
//! stores one shares: the inference service builds it ([`RecordRef`]), the forwarder
//! packs and spools it ([`packed`]), the collector parses and validates it ([`json`],
//! [`packed`], both through the same checks), and the store keeps it ([`Record`]).
//! Nothing here does I/O.

pub mod card;
mod error;
pub mod id;
pub mod json;
pub mod packed;
mod record;
mod status;
mod validate;

pub use card::{BaselineSummary, CardSummary, Task};
pub use error::{BodyError, RecordError};
pub use record::{Record, RecordRef, WireRecord, parse_rfc3339_ms, rfc3339_ms};
pub use status::Status;
pub use validate::{MAX_FEATURES, MAX_VALUE, VALUE_RULE, is_value};
