//! The answers of `/admin/performance` and `/admin/usage`, built from merged slots.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::ring::{Map, Routes};
use crate::stats::{Counts, RouteStats};

/// One route and method over the window. Latencies in milliseconds; quantiles within
/// 1 % of the true value (DDSketch).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutePerformance {
    pub method: String,
    /// The route template (`/models/{name}/predict`), or `unmatched`.
    pub route: String,
    pub count: u64,
    /// 5xx answers.
    pub errors: u64,
    /// 4xx answers.
    pub client_errors: u64,
    /// `errors / count`.
    pub error_rate: f64,
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Performance {
    pub window_seconds: u64,
    /// Busiest first.
    pub routes: Vec<RoutePerformance>,
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

impl Performance {
    pub(crate) fn from_routes(window: Duration, routes: &Routes) -> Self {
        // Stats exist only for routes that had a request, but a merge of empty slots
        // could in principle leave one at zero: skipped before any division.
        let mut out: Vec<RoutePerformance> = routes
            .iter()
            .flat_map(|(route, methods)| methods.iter().map(move |(method, s)| (route, method, s)))
            .filter(|(_, _, s)| s.counts.count > 0)
            .map(|(route, method, s)| {
                let count = s.counts.count as f64;
                RoutePerformance {
                    method: method.to_string(),
                    route: route.to_string(),
                    count: s.counts.count,
                    errors: s.counts.errors,
                    client_errors: s.counts.client_errors,
                    error_rate: s.counts.errors as f64 / count,
                    min_ms: round3(s.min_ms),
                    avg_ms: round3(s.sum_ms / count),
                    max_ms: round3(s.max_ms),
                    p50_ms: round3(s.quantile(0.5)),
                    p95_ms: round3(s.quantile(0.95)),
                    p99_ms: round3(s.quantile(0.99)),
                }
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.route.cmp(&b.route)));
        Self {
            window_seconds: window.as_secs(),
            routes: out,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteUsage {
    pub method: String,
    pub route: String,
    pub count: u64,
    pub errors: u64,
    pub client_errors: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallerUsage {
    /// The API key's name, or `anonymous`.
    pub user: String,
    pub count: u64,
    pub errors: u64,
    pub client_errors: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub window_seconds: u64,
    /// The busiest routes, most requests first.
    pub routes: Vec<RouteUsage>,
    /// The busiest callers, most requests first.
    pub callers: Vec<CallerUsage>,
}

impl Usage {
    pub(crate) fn new(
        window: Duration,
        routes: &Routes,
        callers: &Map<Arc<str>, Counts>,
        top: usize,
    ) -> Self {
        let mut route_rows: Vec<RouteUsage> = routes
            .iter()
            .flat_map(|(route, methods)| {
                methods.iter().map(move |(method, s)| RouteUsage {
                    method: method.to_string(),
                    route: route.to_string(),
                    count: s.counts.count,
                    errors: s.counts.errors,
                    client_errors: s.counts.client_errors,
                })
            })
            .filter(|r| r.count > 0)
            .collect();
        route_rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.route.cmp(&b.route)));
        route_rows.truncate(top);
        let mut caller_rows: Vec<CallerUsage> = callers
            .iter()
            .filter(|(_, c)| c.count > 0)
            .map(|(user, c)| CallerUsage {
                user: user.to_string(),
                count: c.count,
                errors: c.errors,
                client_errors: c.client_errors,
            })
            .collect();
        caller_rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.user.cmp(&b.user)));
        caller_rows.truncate(top);
        Self {
            window_seconds: window.as_secs(),
            routes: route_rows,
            callers: caller_rows,
        }
    }
}

/// One slot of the timeline: every route's requests in that slot.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelinePoint {
    /// Start of the slot, in milliseconds since the Unix epoch.
    pub t_ms: u64,
    pub requests: u64,
    /// 5xx answers.
    pub errors: u64,
    /// 4xx answers.
    pub client_errors: u64,
    /// Requests per second over the slot (the part elapsed, for the current one).
    pub rate_per_s: f64,
    /// `errors / requests` (0 without requests).
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl TimelinePoint {
    pub(crate) fn new(start: std::time::SystemTime, seconds: f64, s: &RouteStats) -> Self {
        let t_ms = start
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let n = s.counts.count;
        Self {
            t_ms,
            requests: n,
            errors: s.counts.errors,
            client_errors: s.counts.client_errors,
            rate_per_s: round3(n as f64 / seconds),
            error_rate: if n == 0 {
                0.0
            } else {
                s.counts.errors as f64 / n as f64
            },
            p50_ms: round3(s.quantile(0.5)),
            p95_ms: round3(s.quantile(0.95)),
            p99_ms: round3(s.quantile(0.99)),
        }
    }
}

/// Requests over all routes, slot by slot, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeline {
    pub slot_seconds: u64,
    pub points: Vec<TimelinePoint>,
}

impl Timeline {
    /// No slots (analytics off).
    pub fn empty() -> Self {
        Self {
            slot_seconds: crate::window::SLOT.as_secs(),
            points: Vec::new(),
        }
    }
}
