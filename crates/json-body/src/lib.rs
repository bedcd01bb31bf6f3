//! How vigil reads JSON bodies, the same way in every service.
//!
//! - **Objects all the way down** (`object`): serde's derived structs take a JSON
//!   array as well as an object and fill their fields by position, so `["<admin
//!   key>"]` would pass for `{"api_key": ...}` and `[["firing", {...}, ...]]` for a
//!   list of alerts. Every struct a vigil body carries is written as an object.
//! - **Syntax before shape** (`syntax`): a typed parse stops at the first error it
//!   meets, so a field error early in a body hides broken JSON after it; the
//!   contract answers broken JSON 400 and well-formed JSON of the wrong shape 422.
//! - **Each key once** (`unique`): a body read as a `serde_json::Value` refuses a
//!   repeated key, as derived structs do, instead of keeping the last.

mod object;
mod syntax;
mod unique;

pub use object::{NOT_AN_OBJECT, Object, is_object, not_an_object, objects, optional};
pub use syntax::syntax_first;
pub use unique::Unique;
