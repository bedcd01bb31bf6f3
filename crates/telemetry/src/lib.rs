//! Telemetry for axum services, as vigil does it: JSON log lines written off the request
//! path, Prometheus metrics with bounded labels (text 0.0.4 and OpenMetrics with trace
//! exemplars), request ids and W3C trace context, and one middleware that ties them
//! together — an access line, metrics and panic safety for every request. Nothing here
//! is specific to models; any axum service can use it.

pub mod body;
pub mod context;
pub mod error;
pub mod exposition;
mod field_secrets;
pub mod logging;
pub mod malformed;
pub mod metrics;
pub mod middleware;
pub mod observer;
pub mod probes;
pub mod process;
pub mod recent;
pub mod redact;
pub mod scrape;
mod series;
pub mod threads;
pub mod writer;

pub use context::{RequestContext, RequestId, TraceContext};
pub use error::{ErrorBody, ErrorInfo, error_response};
pub use logging::{LogConfig, LogCounters, LogGuard};
pub use metrics::{HttpMetrics, Metrics};
pub use middleware::{TelemetryConfig, TelemetryLayer};
pub use observer::{Completed, RequestObserver};
