//! A hook for whatever else wants to see each finished request (request analytics,
//! usage by caller): called once per request from the telemetry layer, with what the
//! access line records, after the metrics and the line.

use std::sync::Arc;
use std::time::Duration;

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub struct Completed<'a> {
    /// One of the closed set of method labels (`OTHER` for anything unusual).
    pub method: &'static str,
    /// The matched route template, or `unmatched`.
    pub route: &'a str,
    pub status: u16,
    pub duration: Duration,
    /// The API key's name, when a key was accepted.
    pub user: Option<&'a Arc<str>>,
}

/// Sees every finished request. Runs on the request's task: keep it short.
pub trait RequestObserver: Send + Sync + std::fmt::Debug {
    fn completed(&self, request: &Completed<'_>);
}
