//! vigil's inference service as a library: the router, handlers, shared state and the
//! error contract. The binary binds the socket and supplies the shutdown future, so
//! tests can run the whole service on port 0 or call the router without a socket.

pub mod catalog;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod labels;
pub mod lifecycle;
pub mod metrics;
pub mod openapi;
pub mod outcome;
pub mod router;
pub mod scheduler;
pub mod state;

pub use error::ApiError;
pub use router::app;
pub use state::{AppState, Limits};

/// The version reported by `service_info`, `/health` and the OpenAPI document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
