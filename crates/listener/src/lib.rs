//! vigil's accept loop, in place of `axum::serve`. axum gives hyper no timer, so hyper's
//! own header timeout never runs and nothing closes a connection that stops sending: a
//! few thousand clients that send half a request head, or open a keep-alive connection
//! and go quiet, would hold every file descriptor and lock everyone else out. Here every
//! connection is bounded in time (header, idle, body and stalled-write timeouts), the
//! number of open connections is capped, and both show in metrics
//! (`http_connections_open`, `http_connections_closed_total{reason}`). Connections are
//! served on threads of their own, one single-threaded runtime each (`threads`), and
//! stay on the one they were handed to.
//!
//! HTTP/1.1 only (HTTP/1.0 too): hyper has no header timeout for HTTP/2, and nothing
//! that talks to vigil needs it.

mod accept;
mod activity;
mod config;
mod connection;
mod io;
mod malformed;
mod metrics;
mod peer;
mod service;
mod threads;

pub use accept::serve;
pub use config::{ConfigError, ListenerConfig};
pub use malformed::MalformedAnswer;
pub use metrics::{CloseReason, ConnectionMetrics};
pub use peer::Peer;
pub use threads::Placement;
